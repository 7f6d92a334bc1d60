#!/usr/bin/env python3
"""OUTPUT_FORMAT=parquet against NDJSON gzip 6 on the same events (run through scripts/bench-parquet.sh).

For each mix (a wrk script of bench/wrk/): one plutos (NDJSON, gzip 6, one worker pinned to the server CPU) takes
the load for --seconds, then stops; its output is converted with `plutos convert` (the uploader's converter, one
thread). Reported per mix:
- bytes stored per event: the NDJSON gzip 6 objects against the Parquet (zstd 3) objects of the same events;
- conversion CPU per event (the convert process's user + system time over the events it converted) against the
  collector's CPU per event while ingesting (all its threads, from /proc/PID/stat): their ratio is how many
  cores of that ingest one shipping core converts for;
- with --query-events N: the SDK mix is loaded until at least N events, then DuckDB answers a GROUP BY event_name
  and a filter on one user over both outputs, interleaved, --rounds times each: the median wall times and their
  ratio.
Needs wrk and a Python with duckdb (the SDK Python of scripts/sdks.sh).
"""

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "plutos"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def files(root, suffix):
    return [p for p in Path(root).rglob(f"*{suffix}") if p.is_file()]


def load(args, work, script, seconds, min_events=0):
    """Runs plutos (NDJSON gzip 6) under wrk; returns (out dir, events stored, server CPU seconds)."""
    port = free_port()
    env = {"PATH": os.environ["PATH"], "PORT": f"127.0.0.1:{port}", "WORKERS": "1", "CPUS": args.server_cpu,
           "SPOOL_DIR": str(work / "spool"), "OUT_DIR": str(work / "out"), "COMPRESSION_TYPE": "gzip",
           "COMPRESSION_LEVEL": "6", "LOG_LEVEL": "warn", "MAX_SPOOL_BYTES": "8GiB"}
    server = subprocess.Popen(["taskset", "-c", args.server_cpu, str(BIN)], env=env, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    start = cpu_seconds(server.pid)
    wrk = ["taskset", "-c", args.load_cpu, "wrk", "-t1", "-c16", f"-d{seconds}s", "-s", f"bench/wrk/{script}.lua",
           f"http://127.0.0.1:{port}"]
    subprocess.run(wrk, cwd=ROOT, capture_output=True, check=True)
    used = cpu_seconds(server.pid) - start
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=120)
    events = sum(json.loads(p.read_text())["events"] for p in files(work / "out", ".meta.json"))
    if events < min_events:
        sys.exit(f"{script}: {events} events in {seconds} s, fewer than {min_events}: give more --query-seconds")
    return work / "out", events, used


def convert(source, dest):
    """plutos convert; returns its CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([str(BIN), "convert", str(source), str(dest)], check=True, capture_output=True,
                   env={"PATH": os.environ["PATH"]})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def size_and_conversion(args, script):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out, events, ingest_cpu = load(args, work, script, args.seconds)
        ndjson = sum(p.stat().st_size for p in files(out, ".ndjson.gz"))
        cpu = convert(out, work / "parquet")
        parquet = sum(p.stat().st_size for p in files(work / "parquet", ".parquet"))
        return {"mix": script, "events": events, "ndjson_bytes": ndjson, "parquet_bytes": parquet,
                "ndjson_per_event": ndjson / events, "parquet_per_event": parquet / events,
                "ratio": parquet / ndjson, "convert_us": cpu / events * 1e6, "ingest_us": ingest_cpu / events * 1e6}


def queries(args):
    import duckdb
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out, events, _ = load(args, work, "post_segment_batch", args.query_seconds, args.query_events)
        convert(out, work / "parquet")
        ndjson = f"read_json_auto('{out}/**/*.ndjson.gz')"
        parquet = f"read_parquet('{work}/parquet/**/*.parquet')"
        asked = {
            "group": "SELECT event_name, count(*) FROM {} GROUP BY event_name",
            "user": "SELECT count(*) FROM {} WHERE user_id = 'user-7'",
        }
        times = {(q, f): [] for q in asked for f in ("ndjson", "parquet")}
        answers = {}
        for _ in range(args.rounds):
            for q, sql in asked.items():
                for f, source in (("ndjson", ndjson), ("parquet", parquet)):
                    con = duckdb.connect()
                    start = time.perf_counter()
                    answers[(q, f)] = sorted(con.sql(sql.format(source)).fetchall())
                    times[(q, f)].append(time.perf_counter() - start)
                    con.close()
        for q in asked:
            assert answers[(q, "ndjson")] == answers[(q, "parquet")], (q, answers)
        return events, {k: statistics.median(v) for k, v in times.items()}, answers


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--mixes", default="get_pixel,get_simple_varied,post_segment_batch")
    parser.add_argument("--query-events", type=int, default=1_000_000)
    parser.add_argument("--query-seconds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    lines = [f"# OUTPUT_FORMAT=parquet against NDJSON gzip 6 ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"- command: `{' '.join(sys.argv)}`",
             f"- plutos: one worker on CPU {args.server_cpu}, wrk -t1 -c16 on CPU {args.load_cpu}, "
             f"{args.seconds} s per mix; conversion: `plutos convert` of that output (PARQUET_* defaults: zstd 3)", "",
             "| mix | events | NDJSON gzip 6 B/event | Parquet B/event | Parquet / NDJSON | conversion CPU µs/event "
             "| ingest CPU µs/event | ingest cores one converting core follows |", "|---|---|---|---|---|---|---|---|"]
    for mix in args.mixes.split(","):
        r = size_and_conversion(args, mix)
        print(r, flush=True)
        lines.append(f"| {mix} | {r['events']:,} | {r['ndjson_per_event']:.1f} | {r['parquet_per_event']:.1f} | "
                     f"×{r['ratio']:.3f} | {r['convert_us']:.2f} | {r['ingest_us']:.2f} | "
                     f"{r['ingest_us'] / r['convert_us']:.1f} |")
    if args.query_events:
        events, medians, answers = queries(args)
        print(medians, answers, flush=True)
        lines += ["", f"DuckDB over {events:,} events of post_segment_batch (median of {args.rounds}, interleaved, "
                      "a fresh connection per query; same answers checked):", "",
                  "| query | NDJSON gzip 6 s | Parquet s | speed-up |", "|---|---|---|---|"]
        for q, name in (("group", "GROUP BY event_name"), ("user", "WHERE user_id = 'user-7'")):
            n, p = medians[(q, "ndjson")], medians[(q, "parquet")]
            lines.append(f"| {name} | {n:.3f} | {p:.3f} | ×{n / p:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
