#!/usr/bin/env python3
"""Regenerates the enrichment data plutos embeds and the user-agent table its tests check against.

Run by scripts/enrich-data.sh (which fetches the pinned packages); not part of the build or the tests:
  assets/uap-core/regexes.json   uap-core's regexes.yaml as JSON (the binary embeds it; serde_json reads it)
  assets/isbot/patterns.json     isbot's pattern list
  tests/data/ua_reference.json   real user-agent strings with what the references say of them: browser, OS
                                 and device by uap-python (the ua-parser project's own port) over the same
                                 regexes, bot or not by isbot itself (node)
  bench/wrk/user_agents.txt      1,000 real user-agent strings, most common first (browsers by their share in
                                 fake-useragent's list, then crawlers): the benchmark's varied traffic

Usage: enrich-data.py UAP_CORE_DIR ISBOT_DIR CRAWLERS_JSON BROWSERS_JSONL ISBOT_VERDICTS_JSON OUT_REPO
(ISBOT_VERDICTS_JSON is written by the shell script from the candidate list this prints with --candidates.)
"""
import json
import os
import re
import sys

import yaml


def candidates(crawlers_json, browsers_jsonl):
    """A few hundred real strings: every 2nd distinct browser string of fake-useragent's list (by share),
    and the first instance of each of the first 200 crawler patterns."""
    seen, browsers = set(), []
    with open(browsers_jsonl) as f:
        for line in f:
            ua = json.loads(line)["useragent"]
            if ua not in seen:
                seen.add(ua)
                browsers.append(ua)
    picked = browsers[::2][:300]
    crawlers = [c["instances"][0] for c in json.load(open(crawlers_json)) if c.get("instances")][:200]
    return picked + [c for c in crawlers if c not in seen]


def bench_user_agents(crawlers_json, browsers_jsonl):
    """1,000 distinct real strings, most common first."""
    share = {}
    with open(browsers_jsonl) as f:
        for line in f:
            row = json.loads(line)
            share[row["useragent"]] = share.get(row["useragent"], 0) + row["percent"]
    browsers = sorted(share, key=lambda ua: -share[ua])
    crawlers = [i for c in json.load(open(crawlers_json)) for i in c.get("instances", [])]
    out, seen = [], set()
    for ua in browsers + crawlers:
        if ua not in seen and "\n" not in ua and '"' not in ua and "\\" not in ua:
            seen.add(ua)
            out.append(ua)
    return out[:1000]


def main():
    if sys.argv[1] == "--candidates":
        json.dump(candidates(sys.argv[2], sys.argv[3]), sys.stdout)
        return
    uap_dir, isbot_dir, crawlers, browsers, verdicts, out = sys.argv[1:7]
    regexes = yaml.safe_load(open(os.path.join(uap_dir, "regexes.yaml")))
    os.makedirs(os.path.join(out, "assets/uap-core"), exist_ok=True)
    with open(os.path.join(out, "assets/uap-core/regexes.json"), "w") as f:
        json.dump(regexes, f, separators=(",", ":"))
    source = open(os.path.join(isbot_dir, "index.js")).read()
    block = re.search(r"var patterns_default = (\[.*?\n\]);", source, re.S).group(1)
    os.makedirs(os.path.join(out, "assets/isbot"), exist_ok=True)
    with open(os.path.join(out, "assets/isbot/patterns.json"), "w") as f:
        json.dump(json.loads(block), f, indent=0)

    from ua_parser import Parser, loaders, basic

    parser = Parser(basic.Resolver(loaders.load_yaml(os.path.join(uap_dir, "regexes.yaml"))))
    bots = json.load(open(verdicts))
    table = []
    for ua in candidates(crawlers, browsers):
        r = parser.parse(ua)
        agent, os_, dev = r.user_agent, r.os, r.device
        table.append({
            "ua": ua,
            "browser": [agent.family, agent.major, agent.minor, agent.patch] if agent else None,
            "os": [os_.family, os_.major, os_.minor, os_.patch] if os_ else None,
            "device": [dev.family, dev.brand, dev.model] if dev else None,
            "bot": bots[ua],
        })
    with open(os.path.join(out, "tests/data/ua_reference.json"), "w") as f:
        json.dump(table, f, indent=0)
    print(f"{len(table)} user agents", file=sys.stderr)
    with open(os.path.join(out, "bench/wrk/user_agents.txt"), "w") as f:
        f.write("".join(ua + "\n" for ua in bench_user_agents(crawlers, browsers)))


main()
