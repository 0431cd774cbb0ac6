#!/usr/bin/env bash
# Builds the fuzz targets (scripts/build.sh fuzz) and runs each for a bounded
# time on a copy of its seed corpus (tests/fuzz/corpus/<target>/), so that
# nothing it finds is written into the repository. Fails on any crash, leak,
# timeout or sanitizer report, and keeps the input that caused it in
# build-fuzz/fuzz-artifacts/<target>/ (see tests/fuzz/README.md).
#   tests/fuzz/run.sh [seconds]    seconds per target, default 30
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-30}"
targets=(value_decoder engine lane_frame lane_session storage_reader)

scripts/build.sh fuzz "${targets[@]/%/_fuzz}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
for target in "${targets[@]}"; do
  corpus="$work/corpus-$target"
  artifacts="build-fuzz/fuzz-artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  cp tests/fuzz/corpus/"$target"/* "$corpus"/
  options=(-max_total_time="$seconds" -print_final_stats=1 -print_funcs=0
           -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts/")
  if [ -f "tests/fuzz/$target.dict" ]; then
    options+=(-dict="tests/fuzz/$target.dict")
  fi
  log="$work/$target.log"
  rc=0
  "build-fuzz/tests/fuzz/${target}_fuzz" "${options[@]}" "$corpus" \
    >"$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
  if [ "$rc" -eq 0 ]; then
    echo "fuzz ${target}: ok, ${execs:-?} execs in ${seconds}s, ${rate:-?} exec/s"
  else
    failed=1
    # The report: the sanitizer's or FUZZ_CHECK's words and the stack.
    grep -v '^#[0-9]' "$log" | tail -n 60 >&2
    echo "fuzz ${target}: FAILED (exit $rc) after ${execs:-?} execs;" \
         "inputs kept in $artifacts/" >&2
  fi
done
exit "$failed"
