#!/usr/bin/env bash
# ghz: an outside gRPC load tool (ghz) against statehub, next to loadgen on
# the same server and rpc, as a check on loadgen's own figures.
#
# Starts a private statehub-server on a free TCP loopback port (metrics on,
# reflection on as always, lease 1 h so the session below outlives the
# runs), opens a session and sets dict "bench/dict" key "k0" with grpcurl,
# then measures for SECONDS each, after a 1 s warmup:
#   - ghz: Dicts.Get of "k0", CLIENTS concurrent calls over CONNECTIONS
#     connections (-c, --connections), the session in `statehub-session`
#     metadata;
#   - ghz: Objects.List with prefix "bench/dict" (one object), likewise;
#   - loadgen: dict_get with CONNECTIONS x CLIENTS/CONNECTIONS clients.
# ghz and grpcurl are installed with `go install` if missing.
#
#   bench/ghz.sh
#   CLIENTS=50 CONNECTIONS=10 SECONDS_PER_OP=5 bench/ghz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/bench_lib.sh
source bench/bench_lib.sh

clients=${CLIENTS:-50}
connections=${CONNECTIONS:-10}
seconds=${SECONDS_PER_OP:-5}
if ((clients % connections != 0)); then
  echo "$0: CLIENTS ($clients) must be a multiple of CONNECTIONS" \
    "($connections)" >&2
  exit 2
fi

gobin=$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin
ghz=$gobin/ghz
grpcurl=$gobin/grpcurl
if [ ! -x "$ghz" ]; then
  go install github.com/bojand/ghz/cmd/ghz@latest
fi
if [ ! -x "$grpcurl" ]; then
  go install github.com/fullstorydev/grpcurl/cmd/grpcurl@latest
fi
scripts/build.sh release statehub-server loadgen

port=$(free_port)
address=127.0.0.1:$port
start_statehub "$port" --metrics_listen=127.0.0.1:0 --lease_ttl=1h

proto=(-import-path api)
call() {
  local proto_file=$1 method=$2 data=$3
  "$grpcurl" -plaintext "${proto[@]}" -proto "$proto_file" -d "$data" \
    "$address" "$method"
}
# The session stream ends when grpcurl half-closes after Hello; the session
# lives on for the lease (1 h).
session=$(call statehub/v1/session.proto statehub.v1.Sessions/Connect \
  '{"hello": {"label": "ghz"}}' | jq -r .welcome.sessionId)
call statehub/v1/objects.proto statehub.v1.Objects/Open \
  '{"name": "bench/dict", "type": "DICT"}' >/dev/null
call statehub/v1/dict.proto statehub.v1.Dicts/Set \
  '{"name": "bench/dict", "key": {"stringValue": "k0"},
    "value": {"intValue": "0"}}' >/dev/null

rows="$bench_tmp/rows"
# ghz learns the rpcs by server reflection: its proto parser refuses the
# proto3 `optional` fields of objects.proto (grpcurl's does not).
run_ghz() {
  local rpc=$1 method=$2 data=$3 out
  out="$bench_tmp/ghz.json"
  for duration in 1s "${seconds}s"; do
    echo "ghz: $method for $duration" >&2
    "$ghz" --insecure --call "$method" -d "$data" -m "{\"statehub-session\": \"$session\"}" \
      -c "$clients" --connections "$connections" -z "$duration" -O json \
      "$address" >"$out"
  done
  # Latencies are in ns. A -z run ends by closing ghz's connections, so the
  # calls in flight then (up to CLIENTS) fail UNAVAILABLE "transport is
  # closing" or CANCELLED "the client connection is closing": those count
  # as cut, not as errors.
  jq -r --arg rpc "$rpc" --arg layout "${connections}conn" '
    ([.errorDistribution // {} | to_entries[]
      | select(.key | test("transport is closing|connection is closing"))
      | .value] | add // 0)
    as $cut
    | [$rpc, "ghz", $layout, .rps,
       (.latencyDistribution[] | select(.percentage == 50) | .latency / 1000),
       (.latencyDistribution[] | select(.percentage == 99) | .latency / 1000),
       .count - (.statusCodeDistribution.OK // 0) - $cut, $cut]
    | @csv' "$out" |
    tr -d '"' >>"$rows"
}
run_ghz Dicts.Get statehub.v1.Dicts.Get \
  '{"name": "bench/dict", "key": {"string_value": "k0"}}'
run_ghz Objects.List statehub.v1.Objects.List \
  '{"prefix": "bench/dict"}'

echo "loadgen: dict_get" >&2
inflight=$((clients / connections))
build/bench/loadgen --address="$address" --connections="$connections" \
  --inflight="$inflight" --seconds="$seconds" --ops=dict_get --csv |
  grep '^dict_get,' |
  awk -F, -v layout="${connections}x${inflight}" \
    '{print "Dicts.Get,loadgen," layout "," $5 "," $6 "," $7 "," $8 ",0"}' \
    >>"$rows"

echo
echo "ghz vs loadgen: $clients concurrent calls, $seconds s, one server" \
  "on $address"
awk -F, '
  BEGIN {
    printf "%-13s %-8s %-8s %12s %9s %9s %7s %5s\n", "rpc", "tool",
      "layout", "ops/s", "p50 us", "p99 us", "errors", "cut"
  }
  { printf "%-13s %-8s %-8s %12.1f %9.1f %9.1f %7d %5d\n", $1, $2, $3, $4,
      $5, $6, $7, $8 }' "$rows"
