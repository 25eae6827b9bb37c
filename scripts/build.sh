#!/usr/bin/env bash
# Configures and builds smtpscope into ./build (or $SMTPSCOPE_BUILD_DIR), -j2.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${SMTPSCOPE_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$build_dir" -j2
