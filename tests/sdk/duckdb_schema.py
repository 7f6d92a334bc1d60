"""DuckDB reads every shipped chunk under a directory with read_json_auto and says what schema it inferred.
argv: the file sink's root. Prints {"columns": {name: type}, "protocols": {protocol: count}, "rows": n}."""
import json
import sys

import duckdb

# The good stream's partitions (the bad rows, under bad/, are another table).
files = f"{sys.argv[1]}/created_date=*/hour=*/*.ndjson.gz"
relation = duckdb.sql(f"SELECT * FROM read_json_auto('{files}')")
columns = dict(zip(relation.columns, [str(t) for t in relation.types]))
protocols = dict(duckdb.sql(f"SELECT protocol, count(*) FROM read_json_auto('{files}') GROUP BY protocol").fetchall())
rows = duckdb.sql(f"SELECT count(*) FROM read_json_auto('{files}')").fetchall()[0][0]
print(json.dumps({"columns": columns, "protocols": protocols, "rows": rows}))
