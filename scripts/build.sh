#!/usr/bin/env bash
# Configures and builds statehub with CMake + Ninja.
#   scripts/build.sh                 build/          (RelWithDebInfo)
#   scripts/build.sh asan [targets]  build-asan/     (ASan + UBSan)
#   scripts/build.sh tsan [targets]  build-tsan/     (TSan)
# Extra arguments name Ninja targets (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."

variant="${1:-release}"
[ $# -gt 0 ] && shift
case "$variant" in
  release) dir=build; sanitize="" ;;
  asan) dir=build-asan; sanitize="address,undefined" ;;
  tsan) dir=build-tsan; sanitize="thread" ;;
  *) echo "build.sh: unknown variant '$variant' (release, asan, tsan)" >&2; exit 2 ;;
esac

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Paths relative to the checkout, so a fresh clone elsewhere hits the cache.
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
fi
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTATEHUB_SANITIZE="$sanitize" "${launcher[@]}" >/dev/null
ninja -C "$dir" "$@"
