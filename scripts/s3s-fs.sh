#!/usr/bin/env bash
# Prints the path of an s3s-fs 0.14.1 binary (the S3 API server the S3 tests run against), building it once into
# a cache outside the clone (PLUTOS_TOOLS_CACHE, else ~/.cache/plutos) so later runs and other clones reuse it.
# 0.14.1 because later versions need rustc 1.96, newer than the toolchain this project builds with.
set -euo pipefail
version=0.14.1
root="${PLUTOS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plutos}/s3s-fs-$version"
bin="$root/bin/s3s-fs"
if [ ! -x "$bin" ]; then
  echo "building s3s-fs $version into $root (once, about 2.5 minutes)" >&2
  cargo install s3s-fs --version "$version" --locked --features binary --root "$root" --quiet >&2
fi
echo "$bin"
