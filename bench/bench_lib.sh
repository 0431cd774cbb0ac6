# shellcheck shell=bash
# Shared by bench/*.sh (sourced, not run): background processes killed on
# exit, a free loopback port, a private Redis, a private statehub-server.
#
#   source "$(dirname "$0")/bench_lib.sh"
#   port=$(free_port); start_redis "$port"

# bench_pids holds every background process started here; bench_cleanup
# kills them when the script exits, however it exits.
bench_pids=()
bench_tmp=$(mktemp -d "${TMPDIR:-/tmp}/statehub-bench-XXXXXX")
bench_cleanup() {
  local pid
  for pid in "${bench_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$bench_tmp"
}
trap bench_cleanup EXIT

# free_port prints a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# require_redis exits with how to install Redis unless its tools are here.
require_redis() {
  local tool
  for tool in redis-server redis-benchmark redis-cli; do
    if ! command -v "$tool" >/dev/null; then
      echo "$0: $tool not found; install Redis first:" >&2
      echo "  apt-get install -y redis-server redis-tools" >&2
      exit 1
    fi
  done
}

# start_redis PORT starts redis-server on 127.0.0.1:PORT with no persistence
# and waits until it answers PING.
start_redis() {
  local port=$1 i
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --logfile "$bench_tmp/redis.log" &
  bench_pids+=("$!")
  for i in $(seq 50); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
    [ "$i" -eq 50 ] || sleep 0.1
  done
  echo "$0: redis-server did not start on port $port:" >&2
  cat "$bench_tmp/redis.log" >&2
  exit 1
}

# start_statehub PORT [FLAGS...] starts build/server/statehub-server on
# 127.0.0.1:PORT and waits for its ready line.
start_statehub() {
  local port=$1 i
  shift
  build/server/statehub-server --listen="127.0.0.1:$port" \
    --log_level=warn "$@" >"$bench_tmp/statehub.out" &
  bench_pids+=("$!")
  for i in $(seq 100); do
    if grep -q '^statehub-server ready' "$bench_tmp/statehub.out"; then
      return 0
    fi
    [ "$i" -eq 100 ] || sleep 0.1
  done
  echo "$0: statehub-server did not get ready on port $port" >&2
  exit 1
}
