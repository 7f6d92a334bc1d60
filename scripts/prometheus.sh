#!/usr/bin/env bash
# Installs Debian's prometheus package (Prometheus and promtool) for tests/operator.rs, once, into a cache outside
# the clone (PLUTOS_TOOLS_CACHE, else ~/.cache/plutos), and prints the directory holding `prometheus` and
# `promtool`. The package is downloaded and unpacked, not installed: no service is started, nothing is written
# outside the cache. Needs apt-get (and root for `apt-get update` when the package lists are missing).
set -euo pipefail
version=2.42.0+ds-5+deb12u1
pin="$(printf '%s' "$version" | sha256sum | cut -c1-12)"
root="${PLUTOS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plutos}/prometheus-$pin"
if [ ! -e "$root/complete" ]; then
  echo "installing Debian's prometheus $version into $root (once)" >&2
  rm -rf "$root"
  mkdir -p "$root/deb"
  if ! (cd "$root/deb" && apt-get download -qq "prometheus=$version" >&2 2>/dev/null); then
    apt-get update -qq >&2
    (cd "$root/deb" && apt-get download -qq "prometheus=$version" >&2)
  fi
  dpkg-deb -x "$root"/deb/prometheus_*.deb "$root/unpacked"
  mkdir -p "$root/bin"
  mv "$root/unpacked/usr/bin/prometheus" "$root/unpacked/usr/bin/promtool" "$root/bin/"
  rm -rf "$root/deb" "$root/unpacked"
  "$root/bin/promtool" --version >&2
  touch "$root/complete"
fi
echo "$root/bin"
