#!/usr/bin/env bash
# What must pass before every commit: formatting, lints, and exactly what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
scripts/protogen.sh --check
bash .ci/run
