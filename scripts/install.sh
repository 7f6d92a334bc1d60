#!/usr/bin/env bash
# Installs plutos as a systemd service: the release binary at /usr/local/bin/plutos, the hardened unit at
# /etc/systemd/system/plutos.service, and /etc/plutos/plutos.env listing every setting (commented, at its
# default; an existing env file is kept). Then: systemctl daemon-reload && systemctl enable --now plutos
#
#   scripts/install.sh [--prefix /] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: scripts/install.sh [--prefix DIR] [--no-build]" >&2; exit 2 ;;
  esac
done
if [ "$build" = 1 ]; then
  cargo build --release --locked --bin plutos
fi
install -D -m 0755 target/release/plutos "$prefix/usr/local/bin/plutos"
install -D -m 0644 systemd/plutos.service "$prefix/etc/systemd/system/plutos.service"
if [ ! -e "$prefix/etc/plutos/plutos.env" ]; then
  install -d -m 0755 "$prefix/etc/plutos"
  "$prefix/usr/local/bin/plutos" --print-env-file > "$prefix/etc/plutos/plutos.env"
  chmod 0600 "$prefix/etc/plutos/plutos.env"
fi
echo "installed under $prefix; now: systemctl daemon-reload && systemctl enable --now plutos"
