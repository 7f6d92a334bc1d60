#!/usr/bin/env bash
# Fetches a real GeoIP database for tests/enrich.rs, once, into a cache outside the clone (PLUTOS_TOOLS_CACHE,
# else ~/.cache/plutos), and prints where it is as one line for `export`:
#   PLUTOS_GEO_COUNTRY_MMDB=<geo-whois-asn-country.mmdb>
# The database is ip-location-db's country build from RIR/whois, ASN and geofeed data (npm package
# @ip-location-db/geo-whois-asn-country-mmdb, pinned; its data is under CC BY 4.0 from the NRO, the package CC0).
# It is used by the tests only, never shipped. Needs npm.
set -euo pipefail
package=@ip-location-db/geo-whois-asn-country-mmdb@2.3.2026061719
pin="$(printf '%s' "$package" | sha256sum | cut -c1-12)"
root="${PLUTOS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plutos}/geo-$pin"
if [ ! -e "$root/complete" ]; then
  echo "fetching $package into $root (once)" >&2
  rm -rf "$root"
  mkdir -p "$root"
  (cd "$root" && npm pack --silent "$package" >/dev/null && tar xzf ./*.tgz && rm ./*.tgz)
  touch "$root/complete"
fi
echo "PLUTOS_GEO_COUNTRY_MMDB=$root/package/geo-whois-asn-country.mmdb"
