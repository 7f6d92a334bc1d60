#!/usr/bin/env bash
# Mutation testing (cargo-mutants, installed once): mutates the named source files one change at a time and runs
# the library's unit tests against each mutant (`--lib`, for the build as well as the run: the whole suite per
# mutant would take hours on 2 cores, so what only the integration tests catch counts as missed here). mutants.out/ keeps every outcome;
# mutants.out/missed.txt lists the survivors.
#
#   scripts/mutants.sh [FILE...]   default: the parser, query, JSON, body, chunk, spool and upload modules
set -euo pipefail
cd "$(dirname "$0")/.."
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(src/http/head.rs src/http/chunked.rs src/http/framing.rs src/event/query.rs src/event/json.rs
    src/event/body.rs src/spool/chunk.rs src/spool/mod.rs src/ship/mod.rs)
fi
command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked
args=()
for file in "${files[@]}"; do args+=(--file "$file"); done
# The unit tests take a few seconds; a mutant still running after 15 s is looping (counted as caught: timeout).
cargo mutants "${args[@]}" --cargo-arg=--lib --timeout 15 --jobs 2
