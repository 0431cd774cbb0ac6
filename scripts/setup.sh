#!/usr/bin/env bash
# Installs everything statehub needs on a fresh Debian 12 machine (as root,
# or with sudo): the C++ toolchain and libraries from Debian's packages, and
# the Python virtual environment in .venv. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git ccache
  protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc
  libabsl-dev prometheus-cpp-dev libgtest-dev libgmock-dev libspdlog-dev
  libfmt-dev clang libclang-rt-14-dev clang-format
  python3 python3-venv
  # promtool and a real Prometheus for the metrics tests.
  prometheus
)

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Python client and its test tools, in .venv (PyPI). The package is
# rebuilt on every run so its generated stubs follow api/.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q './clients/python[test]'
