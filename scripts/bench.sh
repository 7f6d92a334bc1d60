#!/usr/bin/env bash
# GET /e benchmark: plutos (DURABILITY=spool and =memory, gzip L6) against nginx (one worker, the query logged
# as JSON to a gzip'd buffered access log, `return 200`), interleaved A/B/C over N rounds, server pinned to
# one CPU and wrk to another. Per run: req/s, server CPU µs per request (all server threads, from
# /proc/PID/stat), and for plutos the records it shipped against wrk's 2xx count.
#
#   scripts/bench.sh [--rounds N] [--duration 10s] [--server-cpus 0] [--load-cpus 1] [--connections 100]
#
# Installs wrk and nginx-light with apt when missing. Loopback only. Not run by CI: timing never goes into
# a test.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 duration=10s server_cpus=0 load_cpus=1 connections=100 port=8080
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --server-cpus) server_cpus=$2; shift 2 ;;
    --load-cpus) load_cpus=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --quick) rounds=1 duration=3s; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked -q
bin=$PWD/target/release/plutos
work=$(mktemp -d /tmp/plutos-bench.XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
url="http://127.0.0.1:$port/e?test=me"
clk=$(getconf CLK_TCK)

# Sum of utime+stime (clock ticks) of a process and all its threads.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "server did not come up" >&2; return 1
}

# run_wrk NAME PIDS... : runs wrk, prints "req/s cpu_us_per_req requests non2xx"
run_wrk() {
  local before=0 after=0 pid out
  for pid in "$@"; do before=$((before + $(cpu_ticks "$pid"))); done
  out=$(taskset -c "$load_cpus" wrk -t1 -c"$connections" -d"$duration" "$url")
  for pid in "$@"; do after=$((after + $(cpu_ticks "$pid"))); done
  local requests rps non2xx
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  non2xx=${non2xx:-0}
  awk -v r="$rps" -v t=$((after - before)) -v clk="$clk" -v n="$requests" -v bad="$non2xx" \
    'BEGIN { printf "%s %.2f %d %d\n", r, t * 1e6 / clk / n, n, bad }'
}

bench_plutos() {
  local durability=$1 dir=$work/plutos-$1
  rm -rf "$dir"; mkdir -p "$dir"
  PORT=127.0.0.1:$port WORKERS=1 DURABILITY=$durability SPOOL_DIR=$dir/spool OUT_DIR=$dir/out DRAIN_SECONDS=0 \
    LOG_LEVEL=warn taskset -c "$server_cpus" "$bin" 2>"$dir/stderr" &
  local pid=$!
  wait_port
  local result; result=$(run_wrk "$pid")
  kill -TERM "$pid"; wait "$pid"
  local shipped
  shipped=$(find "$dir/out" -name '*.ndjson.gz' -print0 | xargs -0 -r cat | gzip -dc | wc -l)
  echo "$result $shipped"
}

bench_nginx() {
  local dir=$work/nginx
  rm -rf "$dir"; mkdir -p "$dir"
  local mask; mask=$(python3 -c "print(bin(1 << int('$server_cpus'.split(',')[0].split('-')[0]))[2:])")
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@CPU_MASK@|$mask|g" bench/nginx/nginx.conf.template >"$dir/nginx.conf"
  taskset -c "$server_cpus" /usr/sbin/nginx -c "$dir/nginx.conf" -p "$dir" &
  local master=$!
  wait_port
  local workers; workers=$(pgrep -P "$master" | tr '\n' ' ')
  # shellcheck disable=SC2086
  local result; result=$(run_wrk "$master" $workers)
  kill -QUIT "$master"; wait "$master" || true
  echo "$result -"
}

echo "# plutos GET benchmark: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "# server: taskset -c $server_cpus; load: taskset -c $load_cpus wrk -t1 -c$connections -d$duration '$url'"
echo "# round target req/s cpu_us_per_req requests non_2xx shipped_records"
for round in $(seq 1 "$rounds"); do
  echo "$round plutos-spool $(bench_plutos spool)"
  echo "$round plutos-memory $(bench_plutos memory)"
  echo "$round nginx $(bench_nginx)"
done | tee "$work/results"
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "# medians: target req/s cpu_us_per_req"
for target in plutos-spool plutos-memory nginx; do
  rps=$(awk -v t="$target" '$2 == t {print $3}' "$work/results" | median)
  cpu=$(awk -v t="$target" '$2 == t {print $4}' "$work/results" | median)
  echo "$target $rps $cpu"
done
