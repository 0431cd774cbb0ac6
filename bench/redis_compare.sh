#!/usr/bin/env bash
# redis_compare: statehub's dict and list operations next to Redis's hash and
# list commands at the same concurrency, on TCP loopback.
#
# Redis: a private redis-server (no persistence) on a free port, driven by
# redis-benchmark with CLIENTS connections, no pipelining (-P 1), REQUESTS
# requests per command, fields spread over KEYSPACE (-r):
#   HSET myhash k<rand> <rand>   HGET myhash k<rand>
#   LPUSH mylist <rand>          RPOP mylist   (pops what LPUSH pushed)
# statehub: build/bench/loadgen (its own private server) on TRANSPORT (lane,
# the C++ client's default: statehub Clients with a thread per client; or
# grpc: raw gRPC callback calls) with CLIENTS clients laid out two ways,
# CONNECTIONS connections (sessions) x CLIENTS/CONNECTIONS calls in flight,
# and CLIENTS connections x 1, on dict_set (one key per client), dict_get,
# list_append and list_pop, SECONDS measured per op.
# The table puts each statehub op beside its Redis command; ratio is
# statehub ops/s / Redis ops/s. Latencies are each client's own (µs).
#
#   bench/redis_compare.sh
#   CLIENTS=50 CONNECTIONS=10 REQUESTS=300000 SECONDS_PER_OP=5 \
#       KEYSPACE=100000 TRANSPORT=lane bench/redis_compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/bench_lib.sh
source bench/bench_lib.sh

clients=${CLIENTS:-50}
connections=${CONNECTIONS:-10}
requests=${REQUESTS:-300000}
seconds=${SECONDS_PER_OP:-5}
keyspace=${KEYSPACE:-100000}
transport=${TRANSPORT:-lane}
case "$transport" in
  lane | grpc) ;;
  *)
    echo "$0: TRANSPORT must be lane or grpc, not '$transport'" >&2
    exit 2
    ;;
esac
if ((clients % connections != 0)); then
  echo "$0: CLIENTS ($clients) must be a multiple of CONNECTIONS" \
    "($connections)" >&2
  exit 2
fi

require_redis
scripts/build.sh release statehub-server loadgen

# Redis first, alone on the machine; then statehub, alone.
port=$(free_port)
start_redis "$port"
redis_csv="$bench_tmp/redis.csv"
run_redis() {
  local op=$1
  shift
  echo "redis-benchmark: $*" >&2
  # CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
  redis-benchmark -h 127.0.0.1 -p "$port" -c "$clients" -P 1 -n "$requests" \
    -r "$keyspace" --csv "$@" | tail -n +2 | tr -d '"' |
    awk -F, -v op="$op" '{print op "," $2 "," $5 * 1000 "," $7 * 1000}' \
      >>"$redis_csv"
}
run_redis HSET hset myhash k__rand_int__ __rand_int__
run_redis HGET hget myhash k__rand_int__
run_redis LPUSH lpush mylist __rand_int__
run_redis RPOP rpop mylist
kill "${bench_pids[0]}"
wait "${bench_pids[0]}" 2>/dev/null || true

statehub_csv="$bench_tmp/statehub.csv"
run_loadgen() {
  local conns=$1 inflight=$2
  echo "loadgen ($transport): $conns connections x $inflight in flight" >&2
  # The private server's startup lines share stdout; keep the CSV rows.
  build/bench/loadgen --transport="$transport" \
    --connections="$conns" --inflight="$inflight" \
    --seconds="$seconds" --ops=dict_set,dict_get,list_append,list_pop --csv |
    grep -E '^(dict_|list_)' | sed "s/^/${conns}x${inflight},/" \
      >>"$statehub_csv"
}
run_loadgen "$connections" $((clients / connections))
run_loadgen "$clients" 1

echo
echo "statehub (loadgen on the $transport, $seconds s per op) vs Redis" \
  "(redis-benchmark, $requests requests, -r $keyspace): $clients clients," \
  "TCP loopback"
awk -F, '
  NR == FNR { rps[$1] = $2; p50[$1] = $3; p99[$1] = $4; next }
  # layout,op,connections,inflight,clients,ops_per_s,p50_us,p99_us,errors
  { rows[++n] = $0 }
  END {
    split("dict_set dict_get list_append list_pop", ops, " ")
    redis["dict_set"] = "HSET"; redis["dict_get"] = "HGET"
    redis["list_append"] = "LPUSH"; redis["list_pop"] = "RPOP"
    printf "%-12s %-7s %12s %8s %8s %6s   %-6s %12s %8s %8s %7s\n",
      "op", "layout", "statehub/s", "p50 us", "p99 us", "errors",
      "redis", "redis/s", "p50 us", "p99 us", "ratio"
    for (o = 1; o <= 4; ++o) {
      for (r = 1; r <= n; ++r) {
        split(rows[r], f, ",")
        if (f[2] != ops[o]) continue
        cmd = redis[f[2]]
        printf "%-12s %-7s %12.1f %8.1f %8.1f %6d   %-6s %12.1f %8.1f %8.1f %7.3f\n",
          f[2], f[1], f[6], f[7], f[8], f[9], cmd, rps[cmd], p50[cmd],
          p99[cmd], f[6] / rps[cmd]
      }
    }
  }' "$redis_csv" "$statehub_csv"
