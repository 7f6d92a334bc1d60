"""Reads plutos's Parquet output with pyarrow and DuckDB, independently of plutos's own reader.

Usage: parquet_read.py PARQUET_DIR NDJSON_DIR README.md

Checks that both read exactly the schema the README documents (the tables under "## Parquet output": the good
stream's columns, then the bad stream's), that they count the same rows, and that a GROUP BY event_name and a
filter on one user answer over the Parquet objects as DuckDB's read_json_auto answers over the NDJSON objects of
the same events. Prints "rows N" for the good stream; exits non-zero with the difference on any mismatch.
"""

import glob
import os
import sys

import duckdb
import pyarrow.parquet as pq

parquet_dir, ndjson_dir, readme = sys.argv[1:4]


def objects(root, pattern, bad):
    found = sorted(glob.glob(os.path.join(root, "**", pattern), recursive=True))
    return [f for f in found if ("/bad/" in f) == bad]


def documented():
    text = open(readme, encoding="utf-8").read()
    section = text.split("\n## Parquet output", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.append((cells[0].strip("`"), cells[1].strip("`"), cells[2].strip("`")))
    return rows


def check(name, actual, expected):
    if actual != expected:
        print(f"{name}:\n  read:       {actual}\n  documented: {expected}")
        sys.exit(1)


def listed(files):
    return "[" + ",".join(f"'{f}'" for f in files) + "]"


table = documented()
good, bad = objects(parquet_dir, "*.parquet", False), objects(parquet_dir, "*.parquet", True)
for files, columns in ((good, table[:-3]), (bad, table[-3:])):
    if not files:
        print("no objects")
        sys.exit(1)
    schema = pq.read_schema(files[0])
    check("pyarrow schema", [(f.name, str(f.type)) for f in schema], [(c[0], c[1]) for c in columns])
    described = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet({listed(files)}, hive_partitioning=false)")
    check("DuckDB schema", [(r[0], r[1]) for r in described.fetchall()], [(c[0], c[2]) for c in columns])

rows = sum(pq.ParquetFile(f).metadata.num_rows for f in good)
counted = duckdb.sql(f"SELECT count(*) FROM read_parquet({listed(good)})").fetchall()[0][0]
check("rows", counted, rows)

ndjson = objects(ndjson_dir, "*.ndjson*", False)
ndjson = [f for f in ndjson if not f.endswith(".meta.json")]
by_name = "SELECT event_name, count(*) FROM {} GROUP BY event_name ORDER BY event_name NULLS FIRST"
one_user = "SELECT count(*) FROM {} WHERE user_id = 'u-1'"
over_parquet = f"read_parquet({listed(good)})"
over_ndjson = f"read_json_auto({listed(ndjson)})"
check("GROUP BY event_name", duckdb.sql(by_name.format(over_parquet)).fetchall(),
      duckdb.sql(by_name.format(over_ndjson)).fetchall())
check("one user", duckdb.sql(one_user.format(over_parquet)).fetchall(),
      duckdb.sql(one_user.format(over_ndjson)).fetchall())
print(f"rows {rows}")
