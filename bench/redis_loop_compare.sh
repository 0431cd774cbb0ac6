#!/usr/bin/env bash
# redis_loop_compare: statehub-server against redis-server, each driven by a
# single-threaded event-loop client at the same concurrency and pipelining:
# redis-benchmark -c CLIENTS -P P for Redis, build/bench/lane_loop
# --connections=CLIENTS --pipeline=P (raw lane frames, one epoll loop) for
# statehub, on TCP loopback, for each P in PIPELINES. Where
# redis_compare.sh measures the C++ client library (a thread per caller),
# this measures the servers with clients that cost next to nothing.
#
# ROUNDS rounds; odd rounds start with Redis, even rounds with statehub.
# Each round: a fresh redis-server (no persistence) and a fresh private
# statehub-server (in memory). Redis: REQUESTS_P1 (P = 1) or REQUESTS_PN
# requests per command, fields spread over KEYSPACE (-r):
#   HSET myhash k<rand> <rand>   HGET myhash k<rand>
#   LPUSH mylist <rand>          RPOP mylist
# statehub: dict_set, dict_get, list_append, list_pop, SECONDS_PER_OP each
# after a WARMUP. ops/s is the mean of the rounds' runs; ratio is
# statehub / Redis. p50 is the median of the rounds' p50s.
#
#   bench/redis_loop_compare.sh
#   CLIENTS=50 PIPELINES="1 16" ROUNDS=3 bench/redis_loop_compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/bench_lib.sh
source bench/bench_lib.sh

clients=${CLIENTS:-50}
pipelines=${PIPELINES:-"1 16"}
rounds=${ROUNDS:-3}
seconds=${SECONDS_PER_OP:-3}
warmup=${WARMUP:-0.5}
requests_p1=${REQUESTS_P1:-400000}
requests_pn=${REQUESTS_PN:-2000000}
keyspace=${KEYSPACE:-100000}

require_redis
scripts/build.sh release statehub-server lane_loop

rows="$bench_tmp/rows.csv" # system,round,pipeline,op,ops_per_s,p50_us

run_redis() {
  local round=$1 p=$2 port requests
  port=$(free_port)
  start_redis "$port"
  requests=$requests_p1
  ((p > 1)) && requests=$requests_pn
  for cmd in "HSET hset myhash k__rand_int__ __rand_int__" \
    "HGET hget myhash k__rand_int__" "LPUSH lpush mylist __rand_int__" \
    "RPOP rpop mylist"; do
    set -- $cmd
    local op=$1
    shift
    echo "redis-benchmark -c $clients -P $p -n $requests -r $keyspace $*" >&2
    # CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
    redis-benchmark -h 127.0.0.1 -p "$port" -c "$clients" -P "$p" \
      -n "$requests" -r "$keyspace" --csv "$@" | tail -n +2 | tr -d '"' |
      awk -F, -v r="$round" -v p="$p" -v op="$op" \
        '{print "redis," r "," p "," op "," $2 "," $5 * 1000}' >>"$rows"
  done
  kill "${bench_pids[-1]}"
  wait "${bench_pids[-1]}" 2>/dev/null || true
}

run_statehub() {
  local round=$1 p=$2
  echo "lane_loop --connections=$clients --pipeline=$p" >&2
  # The private server's startup lines share stdout; keep the CSV rows.
  build/bench/lane_loop --connections="$clients" --pipeline="$p" \
    --seconds="$seconds" --warmup="$warmup" --csv |
    grep -E '^(dict_|list_)' |
    awk -F, -v r="$round" -v p="$p" '{
      op = $1
      if (op == "dict_set") op = "HSET"; else if (op == "dict_get") op = "HGET"
      else if (op == "list_append") op = "LPUSH"; else op = "RPOP"
      print "statehub," r "," p "," op "," $4 "," $5 "," $1 "," $7}' >>"$rows"
}

for p in $pipelines; do
  for ((r = 1; r <= rounds; ++r)); do
    if ((r % 2 == 1)); then
      run_redis "$r" "$p"
      run_statehub "$r" "$p"
    else
      run_statehub "$r" "$p"
      run_redis "$r" "$p"
    fi
  done
done

echo
echo "statehub-server (lane_loop: raw lane frames, one epoll loop) vs" \
  "redis-server (redis-benchmark), $clients connections, TCP loopback," \
  "$rounds rounds alternating who goes first; ops/s the mean of the" \
  "rounds'; p50 the median of the rounds'"
awk -F, '
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; ++i) for (j = i + 1; j <= n; ++j)
      if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return a[int((n + 1) / 2)]
  }
  {
    key = $3 "," $4
    if (!(key in seen)) { seen[key] = 1; keys[++n] = key }
    sum[$1 "," key] += $5
    count[$1 "," key] += 1
    p50[$1 "," key] = p50[$1 "," key] " " $6
    if ($1 == "statehub") { name[key] = $7; errors[key] += $8 }
  }
  END {
    printf "%-8s %-12s %-6s %12s %8s %12s %8s %7s %7s\n", "pipeline",
      "statehub op", "redis", "statehub/s", "p50 us", "redis/s", "p50 us",
      "ratio", "errors"
    for (i = 1; i <= n; ++i) {
      split(keys[i], k, ",")
      s = sum["statehub," keys[i]] / count["statehub," keys[i]]
      q = sum["redis," keys[i]] / count["redis," keys[i]]
      printf "%-8s %-12s %-6s %12.0f %8.1f %12.0f %8.1f %7.2f %7d\n", k[1],
        name[keys[i]], k[2], s, median(p50["statehub," keys[i]]), q,
        median(p50["redis," keys[i]]), (q > 0 ? s / q : 0), errors[keys[i]]
    }
  }' "$rows"
