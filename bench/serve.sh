# Sourced by bench/syscalls.sh and bench/profile.sh: `serve COMMAND...` starts COMMAND on CPU 0 with
# PORT=127.0.0.1:18300 and a temporary spool and sink (under $work, removed at exit), sets $server to its pid and
# returns once it accepts connections; `load SCENARIO` runs wrk -t1 -c100 -d5s with bench/wrk/SCENARIO.lua on
# CPU 1 and prints its output; `stop` ends the server.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

serve() {
  env SPOOL_DIR="$work/spool" OUT_DIR="$work/out" DRAIN_SECONDS=0 PORT=127.0.0.1:18300 taskset -c 0 "$@" 2>/dev/null &
  server=$!
  python3 - <<'PY'
import socket, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", 18300)).close()
        break
    except OSError:
        time.sleep(0.05)
PY
}

load() {
  taskset -c 1 wrk -t1 -c100 -d5s -s "bench/wrk/$1.lua" http://127.0.0.1:18300
}

stop() {
  kill -TERM "$server"
  wait "$server" || true
}
