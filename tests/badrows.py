"""Checks bad rows against their Iglu schemas with Python's jsonschema, independently of plutos's own validator.

Reads one bad row per line on stdin (`{"schema":"iglu:…","data":{…}}`), finds each schema in the Iglu registry
given as the first argument, validates `data` against it as draft 4 with date-time formats checked, and prints
one line per row that fails. Exit status 1 if any does.
"""

import json
import sys

import jsonschema

registry = sys.argv[1]
checker = jsonschema.Draft4Validator.FORMAT_CHECKER
if "date-time" not in checker.checkers:
    sys.exit("jsonschema cannot check date-time here: rfc3339-validator is missing")
rows = failed = 0
for number, line in enumerate(sys.stdin, 1):
    rows = number
    row = json.loads(line)
    vendor, name, form, version = row["schema"].removeprefix("iglu:").split("/")
    with open(f"{registry}/schemas/{vendor}/{name}/{form}/{version}") as f:
        schema = json.load(f)
    schema.pop("$schema", None)
    errors = list(jsonschema.Draft4Validator(schema, format_checker=checker).iter_errors(row["data"]))
    for error in errors:
        print(f"row {number} ({name} {version}): {error.json_path}: {error.message[:300]}")
    failed += bool(errors)
print(f"{rows} rows, {failed} invalid")
sys.exit(1 if failed else 0)
