#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests against the real server on 127.0.0.1:0, and the
# process tests (SIGKILL / SIGTERM / sink outage / failed spool write / systemd notify) on the real binary.
# Needs only the Rust toolchain: every server the tests use is plutos itself. The micro-benchmarks run once
# first, as a smoke test (criterion's test mode), so the run ends on the test summary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --bench hot_path --bench input_scaling
cargo test --locked --lib --bins --tests "$@"
