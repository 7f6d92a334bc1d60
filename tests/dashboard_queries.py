"""Runs every query of the Grafana dashboard, and reads the state of every alert rule, against a Prometheus.

argv: the Prometheus base URL, the dashboard JSON. Grafana's variables are given what selects everything
($job, $instance and the rows' instance variables: .*; $__rate_interval: 1m; $__range: 5m). Prints one JSON object:
{"panels": {title: {"series": n, "error": …}}, "rules": {name: {"health": …, "lastError": …}}}.
"""

import json
import sys
import urllib.parse
import urllib.request

base, dashboard_path = sys.argv[1], sys.argv[2]


def get(path, **params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def substitute(expr):
    for name, value in [("$__rate_interval", "1m"), ("$__range", "5m")]:
        expr = expr.replace(name, value)
    for name in ("job", "instance", "tls", "udp", "kafka", "enrichment", "validation"):
        expr = expr.replace(f"${name}", ".*")
    return expr


dashboard = json.load(open(dashboard_path))
panels = {}
for panel in dashboard["panels"]:
    if panel["type"] == "row":
        continue
    series, errors = 0, []
    for target in panel["targets"]:
        try:
            answer = get("/api/v1/query", query=substitute(target["expr"]))
            series += len(answer["data"]["result"])
        except Exception as e:  # an HTTP 400 is a query Prometheus refused
            errors.append(f"{target['expr']}: {e}")
    panels[panel["title"]] = {"series": series, "error": "; ".join(errors) or None}
rules = {}
for group in get("/api/v1/rules")["data"]["groups"]:
    for rule in group["rules"]:
        rules[rule["name"]] = {"health": rule["health"], "lastError": rule.get("lastError") or None}
print(json.dumps({"panels": panels, "rules": rules}))
