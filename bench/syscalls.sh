#!/usr/bin/env bash
# System calls per request of a server under wrk, counted by perf's tracepoints over exactly one wrk run.
#
#   bench/syscalls.sh NAME SCENARIO COMMAND...
#   bench/syscalls.sh plutos-uring get_simple env IO_BACKEND=uring target/release/plutos
#   bench/syscalls.sh floor-uring get_close target/release/examples/floor_uring
#
# COMMAND runs on CPU 0 with PORT=127.0.0.1:18300 (and a temporary spool and sink), wrk -t1 -c100 -d5s with
# bench/wrk/SCENARIO.lua on CPU 1. Prints the total and the calls that occur, each divided by wrk's requests.
# Needs perf and tracepoint access (root, or kernel.perf_event_paranoid ≤ 1). Build first (scripts/bench.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 scenario=$2
shift 2
source bench/serve.sh
serve "$@"
events=raw_syscalls:sys_enter
for call in io_uring_enter recvfrom sendto epoll_wait write accept4 close shutdown getpeername setsockopt epoll_ctl \
            read writev recvmsg sendmsg; do
  events="$events,syscalls:sys_enter_$call"
done
perf stat -x, -e "$events" -p "$server" -o "$work/perf.txt" &
counter=$!
sleep 0.3
report=$(load "$scenario")
kill -INT "$counter"
wait "$counter" || true
stop
requests=$(grep -o 'requests=[0-9]*' <<<"$report" | cut -d= -f2)
printf '%s %s requests=%s:' "$name" "$scenario" "$requests"
awk -F, -v r="$requests" '$1 ~ /^[0-9]+$/ && $1 > 0 {
  n = $3; sub(/.*:/, "", n); sub(/sys_enter_/, "", n); printf " %s=%.3f", n, $1 / r }' "$work/perf.txt"
echo
