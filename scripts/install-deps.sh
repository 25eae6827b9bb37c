#!/usr/bin/env bash
# Installs every Debian package smtpscope needs to build, test and run the demo.
# Idempotent: installs only what is missing; runs `apt-get update` only then.
# Postfix is installed with "No configuration" so no system instance is set up:
# the tests and the demo run private instances with their own config dirs.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  libmilter-dev libsqlite3-dev sqlite3 libspdlog-dev libfmt-dev libyaml-cpp-dev
  nlohmann-json3-dev libcli11-dev zlib1g-dev libgtest-dev libgmock-dev googletest libbenchmark-dev
  postfix miltertest swaks msmtp curl python3 openssl procps iproute2 bc time pflogsumm
  sasl2-bin libsasl2-modules libsasl2-modules-db
  chromium fonts-dejavu-core
  clang libclang-rt-dev e2fsprogs util-linux
  libre2-dev debhelper lintian mandoc fakeroot dpkg-dev
  prometheus
  libsystemd-dev systemd-journal-remote
  postgresql-15 libpq-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "install-deps: installing ${missing[*]}"
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
