#!/usr/bin/env bash
# Crash trials on the real binary (tests/crash.rs): keep-alive and pipelining clients record every event answered
# 2xx, SIGKILL at a random moment, restart on the same spool, graceful stop; every acknowledged event must be
# shipped and `plutos verify` must pass. With the file sink, with S3 (s3s-fs, killed during uploads) and with
# Kafka (tansu, killed while messages are in flight).
# Prints acked / lost / duplicates per trial and in total.
#
#   scripts/crash-test.sh [TRIALS]     trials per sink, default 20 (the test suite runs 3)
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-20}"
PLUTOS_S3S_FS="$(scripts/s3s-fs.sh)"
export PLUTOS_S3S_FS
PLUTOS_TANSU="$(scripts/tansu.sh)"
export PLUTOS_TANSU
PLUTOS_CRASH_TRIALS="$trials" cargo test --locked --test crash -- --nocapture --test-threads 1
