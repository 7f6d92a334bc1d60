#!/usr/bin/env bash
# Installs the analytics SDKs that tests/sdks.rs and tests/browser.rs drive against plutos — the real packages,
# pinned, from PyPI and npm — once into a cache outside the clone (PLUTOS_TOOLS_CACHE, else ~/.cache/plutos), and
# prints where they are as two lines for `eval`/`export`:
#   PLUTOS_SDK_PYTHON=<a Python with segment-analytics-python, posthog, snowplow-tracker, rudder-sdk-python, duckdb,
#                      pyarrow (reading Parquet output),
#                      jsonschema (+ rfc3339-validator for date-time) to check bad rows independently, and
#                      REDbot, the HTTP linter>
#   PLUTOS_SDK_NODE=<a node_modules with @segment/analytics-node, posthog-node, @snowplow/node-tracker,
#                    posthog-js and @snowplow/browser-tracker (their built browser files)>
# Needs python3 (with venv) and npm. A new pin list installs into a new directory; a half-done install is redone.
set -euo pipefail
python_packages=(
  segment-analytics-python==2.4.0
  posthog==7.91.1
  snowplow-tracker==1.1.0
  rudder-sdk-python==2.1.9
  duckdb==2.0.1
  pyarrow==26.0.1
  jsonschema==4.26.0
  rfc3339-validator==0.1.4
  redbot==2.7.1
)
node_packages=(
  @segment/analytics-node@3.1.0
  posthog-node@5.70.0
  @snowplow/node-tracker@4.8.0
  posthog-js@1.449.2
  @snowplow/browser-tracker@4.10.1
)
pins="$(printf '%s\n' "${python_packages[@]}" "${node_packages[@]}" | sha256sum | cut -c1-12)"
root="${PLUTOS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plutos}/sdks-$pins"
if [ ! -e "$root/complete" ]; then
  echo "installing the SDKs under test into $root (once)" >&2
  rm -rf "$root"
  mkdir -p "$root/node"
  python3 -m venv "$root/python" >&2
  "$root/python/bin/pip" install --quiet --disable-pip-version-check "${python_packages[@]}" >&2
  (cd "$root/node" && echo '{"name":"plutos-sdk-tests","private":true}' >package.json &&
    npm install --silent --no-audit --no-fund --ignore-scripts "${node_packages[@]}" >&2)
  touch "$root/complete"
fi
echo "PLUTOS_SDK_PYTHON=$root/python/bin/python"
echo "PLUTOS_SDK_NODE=$root/node/node_modules"
