#!/usr/bin/env bash
# Installs the HTTP/2 and HTTP/3 clients the tests drive plutos with, pinned, once into a cache outside the clone
# (PLUTOS_TOOLS_CACHE, else ~/.cache/plutos), and prints the path of that Python:
#   h2 (hyper-h2: the frame-level client of tests/http2.rs — conformance and hostile cases written frame by frame),
#   grpcio + grpcio-tools (a real gRPC client, stubs generated from the repository's .proto files), and the
#   OpenTelemetry Python SDK with its OTLP log exporters (gRPC and HTTP/protobuf), and aioquic (QUIC and
#   HTTP/3: tests/h3_client.py).
# Needs python3 (with venv).
set -euo pipefail
packages=(
  h2==4.4.1
  grpcio==1.85.4
  grpcio-tools==1.85.4
  protobuf==7.36.2
  opentelemetry-sdk==1.45.2
  opentelemetry-exporter-otlp-proto-grpc==1.45.2
  opentelemetry-exporter-otlp-proto-http==1.45.2
  aioquic==1.7.2
)
pin="$(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-12)"
root="${PLUTOS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plutos}/h2-clients-$pin"
if [ ! -e "$root/complete" ]; then
  echo "installing the HTTP/2, gRPC and OpenTelemetry clients into $root (once)" >&2
  rm -rf "$root"
  python3 -m venv "$root/python" >&2
  "$root/python/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}" >&2
  "$root/python/bin/python" -c 'import h2.connection, grpc, grpc_tools.protoc, opentelemetry.sdk._logs, aioquic.h3.connection' >&2
  touch "$root/complete"
fi
echo "$root/python/bin/python"
