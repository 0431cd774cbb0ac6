#!/usr/bin/env bash
# Configures and builds statehub with CMake + Ninja.
#   scripts/build.sh                 build/          (RelWithDebInfo)
#   scripts/build.sh asan [targets]  build-asan/     (ASan + UBSan)
#   scripts/build.sh tsan [targets]  build-tsan/     (TSan)
#   scripts/build.sh server          build-server/   (statehub-server and
#                                                     statehub-cli only, no
#                                                     tests: the image's)
#   scripts/build.sh fuzz [targets]  build-fuzz/     (clang, libFuzzer + ASan
#                                                     + UBSan; tests/fuzz)
# Extra arguments name Ninja targets (default: all; for fuzz, the fuzz
# targets only).
set -euo pipefail
cd "$(dirname "$0")/.."

variant="${1:-release}"
[ $# -gt 0 ] && shift
case "$variant" in
  release) dir=build; sanitize="" ;;
  asan) dir=build-asan; sanitize="address,undefined" ;;
  tsan) dir=build-tsan; sanitize="thread" ;;
  fuzz) dir=build-fuzz; sanitize="address,undefined" ;;
  server) dir=build-server; sanitize="" ;;
  *) echo "build.sh: unknown variant '$variant' (release, asan, tsan, fuzz, server)" >&2; exit 2 ;;
esac

extra=()
if [ "$variant" = server ]; then
  # What server/Dockerfile ships; needs only scripts/setup.sh --server.
  extra=(-DSTATEHUB_BUILD_TESTS=OFF)
  [ $# -gt 0 ] || set -- statehub-server statehub-cli
fi
if [ "$variant" = fuzz ]; then
  # libFuzzer comes with clang only. The fuzz configuration builds the fuzz
  # targets and the libraries they drive, not the tests.
  export CC=clang CXX=clang++
  extra=(-DSTATEHUB_FUZZ=ON -DSTATEHUB_BUILD_TESTS=OFF)
  [ $# -gt 0 ] || set -- statehub_fuzzers
fi

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Paths relative to the checkout, so a fresh clone elsewhere hits the cache.
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
fi
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTATEHUB_SANITIZE="$sanitize" "${launcher[@]}" "${extra[@]}" >/dev/null
ninja -C "$dir" "$@"
