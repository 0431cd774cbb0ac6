#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test:
#   1. the C++ tests (engine units, Value units, end-to-end against the real
#      server, the Python-derived conformance suite) with CTest;
#   2. the same C++ tests built with ASan + UBSan;
#   3. the engine tests and the lane's (its event loops) built with TSan;
#   4. the libFuzzer targets (tests/fuzz), 30 s each;
#   5. the example that builds against the installed CMake package;
#   6. server/Dockerfile's runtime stage against what the release binaries
#      link (tests/container, pytest);
#   7. the Helm chart: helm lint and helm template in both modes, then its
#      tests (tests/chart, pytest);
#   8. the Python client's tests (pytest, against the real server), ruff and
#      mypy;
#   9. the binary wheel: built from step 1's statehub-server and statehub-cli
#      (no C++ compiled again), installed into a fresh virtual environment
#      and run there (tests/wheel, pytest).
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

# Runs ctest, keeping its summary line for the closing count.
run_ctest() {
  local name="$1"; shift
  ctest "$@" --output-on-failure -j "$jobs" 2>&1 | tee "$logs/$name.log"
  return "${PIPESTATUS[0]}"
}

# Each step's time, printed as it starts and summed up at the end: the
# whole command must stay under an hour on a fresh 2-core machine.
timings=()
phase_name="setup"
phase_start=$SECONDS
phase() {
  timings+=("$(printf '%5ds  %s' $((SECONDS - phase_start)) "$phase_name")")
  phase_name="$1"
  phase_start=$SECONDS
  echo "== $1 (at $((SECONDS / 60))m$((SECONDS % 60))s)"
}

scripts/setup.sh

phase "build (release)"
scripts/build.sh release
phase "ctest (release)"
run_ctest release --test-dir build

phase "build (ASan + UBSan)"
scripts/build.sh asan
phase "ctest (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
  run_ctest asan --test-dir build-asan

phase "build and test the engine and the lane's loops (TSan)"
scripts/build.sh tsan statehub_engine_test statehub_lane_test
: >"$logs/tsan.log"
for test in statehub_engine_test statehub_lane_test; do
  TSAN_OPTIONS=halt_on_error=1 "build-tsan/server/$test" \
    --gtest_brief=1 2>&1 | tee -a "$logs/tsan.log"
  [ "${PIPESTATUS[0]}" -eq 0 ]
done

phase "fuzz: each libFuzzer target for 30 s on its seed corpus"
tests/fuzz/run.sh 30 2>&1 | tee "$logs/fuzz.log"
[ "${PIPESTATUS[0]}" -eq 0 ]

phase "the example builds against the installed package"
prefix="$logs/prefix"
cmake --install build --prefix "$prefix" >/dev/null
cmake -S clients/cpp/examples -B "$prefix/example-build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
ninja -C "$prefix/example-build"

phase "container image: the runtime stage installs what the binaries link"
.venv/bin/python -m pytest tests/container -q -p no:cacheprovider 2>&1 \
  | tee "$logs/container.log"
[ "${PIPESTATUS[0]}" -eq 0 ]

phase "Helm chart: lint, render both modes, tests"
# scripts/setup.sh builds the pinned helm into Go's bin directory.
go_cmd="$(command -v go || echo /usr/local/go/bin/go)"
HELM="$("$go_cmd" env GOPATH)/bin/helm"
export HELM
for mode in standalone sidecar; do
  "$HELM" lint --strict charts/statehub --set mode="$mode"
  "$HELM" template statehub charts/statehub --set mode="$mode" >/dev/null
done
.venv/bin/python -m pytest tests/chart -q -p no:cacheprovider 2>&1 \
  | tee "$logs/chart.log"
[ "${PIPESTATUS[0]}" -eq 0 ]

phase "Python client: pytest, ruff, mypy"
.venv/bin/python -m pytest tests/python -q -p no:cacheprovider 2>&1 \
  | tee "$logs/python.log"
[ "${PIPESTATUS[0]}" -eq 0 ]
.venv/bin/ruff check --no-cache clients/python tests/python tests/chart \
  tests/container tests/wheel
(cd clients/python && ../../.venv/bin/mypy --no-incremental)

phase "the binary wheel: build, install into a fresh venv, run"
# scripts/build.sh wheel takes build/'s statehub-server and statehub-cli,
# which the release build above made: it compiles nothing, and costs the
# packaging (pip wheel, auditwheel repair) and the install, under a minute.
scripts/build.sh wheel
.venv/bin/python -m pytest tests/wheel -q -p no:cacheprovider 2>&1 \
  | tee "$logs/wheel.log"
[ "${PIPESTATUS[0]}" -eq 0 ]

phase "done"
printf '%s\n' "${timings[@]}"

# One closing line that counts every test run above.
passed=$(cat "$logs"/release.log "$logs"/asan.log \
  | sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' \
  | awk '{s += $1} END {print s + 0}')
tsan=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) tests.*/\1/p' "$logs/tsan.log" \
  | awk '{s += $1} END {print s + 0}')
pytest_passed() { sed -n 's/^\([0-9]*\) passed.*/\1/p' "$logs/$1.log" | tail -1; }
python=$(pytest_passed python)
chart=$(pytest_passed chart)
container=$(pytest_passed container)
wheel=$(pytest_passed wheel)
fuzz=$(grep -c '^fuzz .*: ok' "$logs/fuzz.log")
echo "statehub: $((passed + tsan + python + chart + container + wheel + fuzz)) passed, 0 failed"
