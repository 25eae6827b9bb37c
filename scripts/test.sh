#!/usr/bin/env bash
# Every test (README command 2): installs what is missing, builds, runs the
# unit tests and the real-Postfix integration tests through ctest; then the
# same again in a build with AddressSanitizer and UndefinedBehaviorSanitizer
# (daemons included: a sanitizer finding makes a daemon exit non-zero, and
# the tests check every exit status); then each libFuzzer target for a
# bounded time (scripts/fuzz.sh; SMTPSCOPE_FUZZ_SECONDS, default 10).
# The Debian package test (label debian: builds, installs and purges the
# .deb), the HTML report's Chromium test (label browser), the 7,000-message
# session through Postfix (label long; its code paths run under the
# sanitizers in unit tests) and the commands' tests against PostgreSQL
# (label postgres: their libpq paths run sanitized in the fleet test, whose
# daemons forward to PostgreSQL) run in the first pass only; the package is
# built without sanitizers, and neither pass but the first builds bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
ctest --test-dir "${SMTPSCOPE_BUILD_DIR:-build}" --output-on-failure -j2 --timeout 600

if [ "${SMTPSCOPE_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== again with AddressSanitizer + UndefinedBehaviorSanitizer =="
  cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DSMTPSCOPE_BENCH=OFF \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
    >/dev/null
  cmake --build build-sanitize -j2
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    ctest --test-dir build-sanitize --output-on-failure -j2 --timeout 900 -LE "debian|browser|long|postgres"
fi

if [ "${SMTPSCOPE_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz targets, ${SMTPSCOPE_FUZZ_SECONDS:-10} s each =="
  bash scripts/fuzz.sh
fi
