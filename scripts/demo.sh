#!/usr/bin/env bash
# The live demo (README command 1): installs what is missing, builds, starts a
# private Postfix on loopback with smtpscope-milter, replays real client
# sessions and prints what smtpscope recorded. Needs root (Postfix).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
SMTPSCOPE_BUILD_DIR="$(pwd)/${SMTPSCOPE_BUILD_DIR:-build}" python3 tests/integration/demo.py
