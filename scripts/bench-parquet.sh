#!/usr/bin/env bash
# OUTPUT_FORMAT=parquet against NDJSON gzip 6 (bench/parquet.py): bytes per event, conversion CPU per event
# against ingest CPU per event, and DuckDB's query times over both. Arguments go to bench/parquet.py
# (e.g. --out bench/results/DATE-parquet.md). Installs wrk with apt when missing; the Python with DuckDB is the
# SDK Python of scripts/sdks.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  sudo apt-get update -qq && sudo apt-get install -y -qq wrk
fi
cargo build --release --locked
eval "$(scripts/sdks.sh | grep '^PLUTOS_SDK_PYTHON=')"
exec "$PLUTOS_SDK_PYTHON" bench/parquet.py "$@"
