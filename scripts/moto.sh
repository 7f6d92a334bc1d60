#!/usr/bin/env bash
# Installs moto's server (an SQS API server, PyPI `moto[server]`) and boto3 (the AWS SDK for Python, the tests'
# independent SQS reader and the consumer of object-ready notifications), pinned, once into a cache outside the
# clone (PLUTOS_TOOLS_CACHE, else ~/.cache/plutos), and prints the path of that Python. tests/common/sqs.rs starts
# `tests/common/moto_server.py` with it on a free loopback port and stops it. Needs python3 (with venv).
set -euo pipefail
packages=(
  'moto[server]==5.2.6'
  boto3==1.44.18
)
pin="$(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-12)"
root="${PLUTOS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plutos}/moto-$pin"
if [ ! -e "$root/complete" ]; then
  echo "installing moto (SQS server) and boto3 into $root (once)" >&2
  rm -rf "$root"
  python3 -m venv "$root/python" >&2
  "$root/python/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}" >&2
  "$root/python/bin/python" -c 'import moto.server, boto3' >&2
  touch "$root/complete"
fi
echo "$root/python/bin/python"
