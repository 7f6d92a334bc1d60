#!/usr/bin/env bash
# Regenerates the vendored enrichment data (assets/uap-core, assets/isbot) and tests/data/ua_reference.json from
# pinned registry packages: uap-core and isbot (the data plutos embeds), crawler-user-agents and fake-useragent
# (real user-agent strings), uap-python (the reference answers). A maintainer's tool, run when the lists are
# updated; neither the build nor the tests run it. Needs network access to npm and PyPI.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
UAP_CORE=0.18.0 ISBOT=5.2.3 CRAWLERS=1.60.0 UAP_PYTHON=1.0.2 FAKE_UA=2.2.0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack -q "uap-core@$UAP_CORE" "isbot@$ISBOT" "crawler-user-agents@$CRAWLERS" >/dev/null
for p in uap-core isbot crawler-user-agents; do mkdir "$p" && tar xzf "$p"-*.tgz -C "$p"; done
python3 -m venv venv
venv/bin/pip install -q "ua-parser==$UAP_PYTHON" "fake-useragent==$FAKE_UA" pyyaml
browsers="$(venv/bin/python -c 'import fake_useragent, os; print(os.path.join(os.path.dirname(fake_useragent.__file__), "data/browsers.jsonl"))')"
crawlers="$work/crawler-user-agents/package/crawler-user-agents.json"
venv/bin/python "$repo/scripts/enrich-data.py" --candidates "$crawlers" "$browsers" >candidates.json
# isbot's own verdict on each candidate.
node -e '
  const { isbot } = require(process.argv[1]);
  const uas = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
  process.stdout.write(JSON.stringify(Object.fromEntries(uas.map((ua) => [ua, isbot(ua)]))));
' "$work/isbot/package/index.js" candidates.json >verdicts.json
venv/bin/python "$repo/scripts/enrich-data.py" uap-core/package isbot/package "$crawlers" "$browsers" verdicts.json "$repo"
cp uap-core/package/LICENSE "$repo/assets/uap-core/LICENSE"
cp isbot/package/LICENSE "$repo/assets/isbot/LICENSE"
echo "uap-core $UAP_CORE, isbot $ISBOT, crawler-user-agents $CRAWLERS, fake-useragent $FAKE_UA, uap-python $UAP_PYTHON" \
  >"$repo/assets/VERSIONS"
