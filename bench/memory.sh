#!/usr/bin/env bash
# memory: bytes per small dict entry in statehub next to bytes per hash
# field in Redis, and statehub's bytes per parked call.
#
# statehub: build/bench/memory_bench (see bench/memory.cc): server VmRSS
# before and after ENTRIES entries "k<i>" -> i in one dict, and before and
# after WAITERS parked Locks.Acquire calls.
# Redis: a private redis-server (no persistence); INFO memory before and
# after HSET myhash k<i> i for ENTRIES fields, fed through
# `redis-cli --pipe`. used_memory is what Redis's allocator holds for data
# (the figure Redis reports); used_memory_rss is the process's RSS, the
# figure comparable to statehub's VmRSS. Both ratios are shown.
#
#   bench/memory.sh
#   ENTRIES=1000000 WAITERS=10000 bench/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/bench_lib.sh
source bench/bench_lib.sh

entries=${ENTRIES:-1000000}
waiters=${WAITERS:-10000}

require_redis
scripts/build.sh release statehub-server memory_bench

echo "memory_bench: $entries entries, $waiters parked calls" >&2
# The private server's startup lines share stdout; keep the CSV rows.
build/bench/memory_bench --entries="$entries" --waiters="$waiters" --csv |
  grep -E '^(dict entries|parked)' >"$bench_tmp/statehub.csv"

port=$(free_port)
start_redis "$port"
redis_memory() {
  # Prints used_memory,used_memory_rss.
  redis-cli -p "$port" info memory | tr -d '\r' |
    awk -F: '$1 == "used_memory" { m = $2 } $1 == "used_memory_rss" { r = $2 }
             END { print m "," r }'
}
redis_before=$(redis_memory)
echo "redis: HSET of $entries fields" >&2
# RESP for HSET myhash k<i> <i>, which redis-cli --pipe sends as fast as
# Redis takes it.
awk -v n="$entries" 'BEGIN {
  for (i = 0; i < n; ++i) {
    k = "k" i; v = "" i
    printf "*4\r\n$4\r\nHSET\r\n$6\r\nmyhash\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n",
      length(k), k, length(v), v
  }
}' | redis-cli -p "$port" --pipe >"$bench_tmp/pipe.out"
fields=$(redis-cli -p "$port" hlen myhash)
if [ "$fields" != "$entries" ]; then
  echo "$0: myhash has $fields fields, not $entries:" >&2
  cat "$bench_tmp/pipe.out" >&2
  exit 1
fi
# used_memory_rss is sampled by Redis's cron (every 100 ms); let it catch up.
sleep 1
redis_after=$(redis_memory)

echo
echo "memory: statehub-server VmRSS vs Redis INFO memory"
awk -F, -v rb="$redis_before" -v ra="$redis_after" '
  BEGIN {
    split(rb, b, ","); split(ra, a, ",")
    printf "%-28s %9s %14s %14s %14s %9s %9s\n", "measure", "count",
      "statehub B/ea", "redis used B", "redis RSS B", "ratio", "ratio RSS"
  }
  # measure,count,rss_before,rss_after,bytes_each
  $1 == "dict entries" {
    used = (a[1] - b[1]) / $2; rss = (a[2] - b[2]) / $2
    printf "%-28s %9d %14.1f %14.1f %14.1f %9.3f %9.3f\n",
      "dict entries / hash fields", $2, $5, used, rss, $5 / used, $5 / rss
  }
  $1 != "dict entries" {
    printf "%-28s %9d %14.1f %14s %14s %9s %9s\n", $1, $2, $5, "-", "-",
      "-", "-"
  }' "$bench_tmp/statehub.csv"
echo "(ratio: statehub bytes / Redis used_memory bytes; ratio RSS: /" \
  "Redis RSS bytes)"
