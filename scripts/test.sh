#!/usr/bin/env bash
# Every test (README command 2): installs what is missing, builds, runs the
# unit tests and the real-Postfix integration tests through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
ctest --test-dir "${SMTPSCOPE_BUILD_DIR:-build}" --output-on-failure -j2 --timeout 600
