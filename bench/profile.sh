#!/usr/bin/env bash
# Where a server's CPU goes under wrk: perf record (cpu-clock, 2 kHz) over one wrk run, then the shares of kernel
# and user space, of the kernel's TCP/IP work, of system call entry and descriptor lookups, of io_uring's own
# handling, and the top symbols.
#
#   bench/profile.sh NAME SCENARIO COMMAND...
#   bench/profile.sh plutos-uring get_simple env IO_BACKEND=uring target/release/plutos
#
# COMMAND runs on CPU 0 with PORT=127.0.0.1:18300 (and a temporary spool and sink), wrk -t1 -c100 -d5s with
# bench/wrk/SCENARIO.lua on CPU 1; the profile is kept as /tmp/perf-NAME-SCENARIO.data. Needs perf (root, or
# kernel.perf_event_paranoid ≤ 1 and kernel symbols readable).
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 scenario=$2
shift 2
source bench/serve.sh
serve "$@"
data="/tmp/perf-$name-$scenario.data"
perf record -q -e cpu-clock -F 2000 -g -p "$server" -o "$data" 2>/dev/null &
recorder=$!
sleep 0.3
load "$scenario" >/dev/null
kill -INT "$recorder"
wait "$recorder" || true
stop
symbols() { perf report -i "$data" --no-children -g none --sort sym -q 2>/dev/null; }
share() { symbols | grep -E "$1" | awk '{ s += $1 } END { printf "%.2f%%", s }'; }
echo "== $name $scenario"
perf report -i "$data" --no-children -g none --sort dso -q 2>/dev/null | grep -v '^$' | head -4
echo "kernel TCP/IP and socket buffers: $(share '\] (tcp_|__tcp|ip_|__ip|skb_|__skb|inet_|__inet|bbr_|net_rx|__netif|__dev_queue|sock_|__sock|release_sock|lock_sock)')"
echo "system call entry, descriptor lookups, epoll: $(share '\] (do_syscall_64|entry_SYSCALL|syscall_exit|fdget|fput|__sys_sendto|__sys_recvfrom|__x64_sys|ep_|do_epoll|syscall_return)')"
echo "io_uring's own handling: $(share '\] (io_|__io_|io_uring)')"
symbols | grep -v '^$' | head -15
