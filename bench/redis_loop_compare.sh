#!/usr/bin/env bash
# redis_loop_compare: statehub-server against redis-server, each driven by a
# single-threaded event-loop client at the same concurrency and pipelining:
# redis-benchmark -c CLIENTS -P P for Redis; for statehub, on the same
# shape (--connections=CLIENTS --pipeline=P, one thread), each of
# STATEHUB_CLIENTS:
#   async  build/bench/lane_loop --client=async: the C++ client's
#          asynchronous API (statehub/async.h), what an application gets
#   raw    build/bench/lane_loop --client=raw: lane frames written by hand,
#          what the server serves a client that costs next to nothing (it
#          numbers writes over TCP, as WELCOME advises; the async client
#          does not)
# on TCP loopback, for each P in PIPELINES.
#
# ROUNDS rounds; odd rounds run Redis first, then async, then raw; even
# rounds the other way round. Each run: a fresh redis-server (no
# persistence) or a fresh private statehub-server (in memory). Redis:
# REQUESTS_P1 (P = 1) or REQUESTS_PN requests per command, fields spread
# over KEYSPACE (-r):
#   HSET myhash k<rand> <rand>   HGET myhash k<rand>
#   LPUSH mylist <rand>          RPOP mylist
# statehub: dict_set, dict_get, list_append, list_pop, SECONDS_PER_OP each
# after a WARMUP. ops/s is the mean of the rounds' runs; each ratio is that
# client's ops/s / Redis's. p50 is the median of the rounds' p50s. errors
# are the async client's (list_pop of an emptied list: Redis answers nil).
#
#   bench/redis_loop_compare.sh
#   CLIENTS=50 PIPELINES="1 16" ROUNDS=3 STATEHUB_CLIENTS="async raw" \
#       bench/redis_loop_compare.sh
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
statehub_clients=${STATEHUB_CLIENTS:-"async raw"}

require_redis
scripts/build.sh release statehub-server lane_loop

# system,round,pipeline,op,ops_per_s,p50_us[,statehub op,errors]
rows="$bench_tmp/rows.csv"

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
  local kind=$1 round=$2 p=$3
  case "$kind" in
    async | raw) ;;
    *)
      echo "$0: STATEHUB_CLIENTS: unknown client '$kind' (async, raw)" >&2
      exit 2
      ;;
  esac
  echo "lane_loop --client=$kind --connections=$clients --pipeline=$p" >&2
  # The private server's startup lines share stdout; keep the CSV rows.
  build/bench/lane_loop --client="$kind" --connections="$clients" \
    --pipeline="$p" --seconds="$seconds" --warmup="$warmup" --csv |
    grep -E '^(dict_|list_)' |
    awk -F, -v s="$kind" -v r="$round" -v p="$p" '{
      op = $1
      if (op == "dict_set") op = "HSET"; else if (op == "dict_get") op = "HGET"
      else if (op == "list_append") op = "LPUSH"; else op = "RPOP"
      print s "," r "," p "," op "," $4 "," $5 "," $1 "," $7}' >>"$rows"
}

reversed=$(echo "$statehub_clients" | tr ' ' '\n' | tac | tr '\n' ' ')
for p in $pipelines; do
  for ((r = 1; r <= rounds; ++r)); do
    if ((r % 2 == 1)); then
      run_redis "$r" "$p"
      for kind in $statehub_clients; do run_statehub "$kind" "$r" "$p"; done
    else
      for kind in $reversed; do run_statehub "$kind" "$r" "$p"; done
      run_redis "$r" "$p"
    fi
  done
done

echo
echo "statehub-server (lane_loop: async, the C++ async client; raw, hand-made" \
  "frames) vs redis-server (redis-benchmark), $clients connections, one" \
  "client thread each, TCP loopback, $rounds rounds alternating who goes" \
  "first; ops/s the mean of the rounds'; p50 (us) the median of the rounds'"
awk -F, -v kinds="$statehub_clients" '
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
    if ($1 != "redis") name[key] = $7
    if ($1 == "async") errors[key] += $8
  }
  END {
    nk = split(kinds, kind, " ")
    printf "%-8s %-12s %-6s %11s %7s", "pipeline", "statehub op", "redis",
      "redis/s", "p50"
    for (k = 1; k <= nk; ++k) {
      printf " %11s %7s %11s", kind[k] "/s", "p50", kind[k] "/redis"
    }
    printf " %7s\n", "errors"
    for (i = 1; i <= n; ++i) {
      split(keys[i], f, ",")
      q = sum["redis," keys[i]] / count["redis," keys[i]]
      printf "%-8s %-12s %-6s %11.0f %7.1f", f[1], name[keys[i]], f[2], q,
        median(p50["redis," keys[i]])
      for (k = 1; k <= nk; ++k) {
        c = kind[k] "," keys[i]
        s = count[c] > 0 ? sum[c] / count[c] : 0
        printf " %11.0f %7.1f %11.2f", s, median(p50[c]), (q > 0 ? s / q : 0)
      }
      printf " %7d\n", errors[keys[i]]
    }
  }' "$rows"
