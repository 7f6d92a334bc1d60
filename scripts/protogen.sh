#!/usr/bin/env bash
# Regenerates src/grpc/gen/ (prost types of proto/plutos and of OTLP's logs) with tools/protogen (protox +
# prost-build: no protoc needed), formatted as the rest of the code. `--check`: fails if the committed files differ
# from what the .proto files generate.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo run --quiet --manifest-path tools/protogen/Cargo.toml --target-dir target/protogen -- "$out"
rustfmt --edition 2024 --config-path rustfmt.toml "$out"/*.rs
if [ "${1:-}" = --check ]; then
  diff -ru "$out" src/grpc/gen && echo "src/grpc/gen is what proto/ generates"
else
  rm -rf src/grpc/gen
  mkdir -p src/grpc/gen
  cp "$out"/*.rs src/grpc/gen/
  echo "src/grpc/gen regenerated" >&2
fi
