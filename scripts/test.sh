#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests against the real server on 127.0.0.1:0, and the
# process tests (SIGKILL / SIGTERM / sink outage) on the real binary. Needs only the Rust toolchain: every
# server the tests use is plutos itself.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --locked --all-targets "$@"
