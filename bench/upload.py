#!/usr/bin/env python3
"""The upload scenario (run it through `scripts/bench.sh --upload`): how fast one uploader ships sealed chunks to an
S3 API server on loopback, and whether it keeps up with what the workers seal.

1. Fill: plutos (pinned to the server CPUs) takes the pipelined GET load (bench/wrk/get_pipelined.lua) for a few
   seconds while its S3 endpoint refuses connections, so every sealed chunk stays in the spool. The spool's growth
   per second per server CPU is what the workers seal at their peak.
2. Ship: for each UPLOAD_CONCURRENCY, a copy of that spool is shipped by a fresh plutos (pinned to the server CPUs,
   no traffic) to s3s-fs (pinned to the load CPUs, SigV4 checked) until nothing is left. Figures: MB/s and chunks/s
   shipped, and plutos's CPU seconds (all its threads: the uploader's runtime and its blocking pool; the idle
   workers add next to nothing) per GB shipped.
The number of cores one uploader follows = MB/s shipped / MB/s sealed per core.

With `--sink kafka` the ship step produces to tansu (scripts/tansu.sh, pinned to the load CPUs, memory storage, a
3-partition topic) instead: events/s produced and plutos's CPU µs per event (every event becomes a message), and
the cores one uploader follows = events/s produced / events/s a server core accepted while filling. Keep the
backlog small (`--backlog-mb 8`): the broker holds every message in memory.

With `--sink sqs` it sends to moto's SQS server (scripts/moto.sh, tests/common/moto_server.py, pinned to the load
CPUs) instead: events/s sent, plutos's CPU µs per event, and the batch size reached (messages per
SendMessageBatch request). moto is one Python process: it, not plutos, bounds events/s; the CPU per event is the
figure that carries to SQS itself. Keep the backlog to a few MB.
"""

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import BIN, CLK_TCK, ROOT, cpu_list, cpu_ticks, wait_port  # noqa: E402

CODECS = {"gzip6": ("gzip", "6"), "gzip1": ("gzip", "1"), "zstd3": ("zstd", "3"), "none": ("none", "1")}
ACCESS, SECRET, BUCKET = "bench", "bench-secret", "events"


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise RuntimeError(f"no metric {name}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plutos(args, spool, env_extra):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORT": f"127.0.0.1:{args.port}",
        "WORKERS": str(len(cpu_list(args.server_cpus))),
        "SPOOL_DIR": str(spool),
        "DRAIN_SECONDS": "0",
        "LOG_LEVEL": "warn",
        "DRIVER": "s3",
        "S3_BUCKET": BUCKET,
        "S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": ACCESS,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "COMPRESSION_TYPE": CODECS[args.codec][0],
        "COMPRESSION_LEVEL": CODECS[args.codec][1],
        "MAX_CHUNK_BYTES": args.chunk_bytes,
        "MAX_BUFFER_TIME_SECONDS": "3600",
    }
    env.update(env_extra)
    proc = subprocess.Popen(["taskset", "-c", args.server_cpus, str(args.binary)], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(spool.parent / "plutos.stderr", "a"))
    wait_port(args.port, proc)
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=300)


def fill(args, work):
    """Seals chunks under the pipelined load with nowhere to ship them. Returns (spool dir, figures)."""
    spool = work / "fill" / "spool"
    spool.parent.mkdir(parents=True)
    refused = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = plutos(args, spool, {"S3_ENDPOINT": refused, "SHUTDOWN_TIMEOUT_SECONDS": "0",
                                "UPLOAD_BACKOFF_MAX_MS": "3600000"})
    try:
        before = metric(args.port, "plutos_spool_bytes")
        events_before = metric(args.port, "plutos_events_accepted_total")
        start = time.monotonic()
        threads = len(cpu_list(args.load_cpus))
        subprocess.run(["taskset", "-c", args.load_cpus, "wrk", f"-t{threads}", "-c100", f"-d{args.fill_seconds}s",
                        "-s", f"bench/wrk/{args.fill_scenario}.lua", f"http://127.0.0.1:{args.port}"],
                       cwd=ROOT, capture_output=True, check=True)
        seconds = time.monotonic() - start
        grown = metric(args.port, "plutos_spool_bytes") - before
        events = metric(args.port, "plutos_events_accepted_total") - events_before
    finally:
        stop(proc)  # seals the open chunks; with SHUTDOWN_TIMEOUT_SECONDS=0 they all stay in the spool
    cores = len(cpu_list(args.server_cpus))
    return spool, {"seconds": seconds, "events_per_s": events / seconds, "sealed_mb_per_s_core": grown / seconds / cores / 1e6}


CHUNK_NAME = re.compile(r"^(?P<stem>[0-9a-f]+-w\d+-)(?P<chunk>\d{8})(?P<rest>-f\d+-t\d+-n\d+\..+)$")


def grow_backlog(spool, target_bytes):
    """Hard-links the sealed chunks under new chunk numbers until the spool holds `target_bytes` (the uploader
    reads them from the page cache, as it reads freshly sealed chunks). Returns (chunks, bytes)."""
    sealed = spool / "sealed"
    originals = sorted(sealed.iterdir())
    # More than the backlog sealed already (small chunks, a slow sink): the chunks past it are removed.
    while len(originals) > 1 and sum(p.stat().st_size for p in originals[:-1]) >= target_bytes:
        originals.pop().unlink()
    size = sum(p.stat().st_size for p in originals)
    copies = max(0, -(-target_bytes // size) - 1)
    for copy in range(1, copies + 1):
        for path in originals:
            m = CHUNK_NAME.match(path.name)
            os.link(path, sealed / f"{m['stem']}{int(m['chunk']) + copy * 100_000:08}{m['rest']}")
    return len(originals) * (copies + 1), size * (copies + 1)


def s3s_fs(args, root):
    binary = subprocess.run([str(ROOT / "scripts" / "s3s-fs.sh")], capture_output=True, text=True, check=True).stdout.strip()
    (root / BUCKET).mkdir(parents=True)
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", args.load_cpus, binary, "--host", "127.0.0.1", "--port", str(port),
                             "--access-key", ACCESS, "--secret-key", SECRET, str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, f"http://127.0.0.1:{port}"


def tansu(args):
    """tansu on a free port of the load CPUs with a 3-partition topic `events`; returns (process, brokers)."""
    binary = subprocess.run([str(ROOT / "scripts" / "tansu.sh")], capture_output=True, text=True, check=True).stdout.strip()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(["taskset", "-c", args.load_cpus, binary, "broker", "--listener-url", url,
                             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    subprocess.run([binary, "topic", "create", "events", "--broker", url, "--partitions", "3"], check=True,
                   capture_output=True)
    return proc, f"127.0.0.1:{port}"


def moto(args):
    """moto's SQS server on a free port of the load CPUs with a queue `events`; returns (process, queue URL)."""
    python = subprocess.run([str(ROOT / "scripts" / "moto.sh")], capture_output=True, text=True, check=True).stdout.strip()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    proc = subprocess.Popen(["taskset", "-c", args.load_cpus, python, str(ROOT / "tests" / "common" / "moto_server.py"), "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    port = int(proc.stdout.readline())
    endpoint = f"http://127.0.0.1:{port}"
    url = subprocess.run([python, str(ROOT / "tests" / "common" / "sqs_client.py"), "create", endpoint, "events"],
                         capture_output=True, text=True, check=True, env=env).stdout.strip()
    return proc, url


def ship(args, work, filled, concurrency, round_no):
    """Ships a copy of the filled spool with UPLOAD_CONCURRENCY=concurrency; returns its figures."""
    base = work / f"ship-c{concurrency}-r{round_no}"
    spool = base / "spool"
    shutil.copytree(filled, spool)
    chunks = len(list((spool / "sealed").iterdir()))
    if args.sink == "kafka":
        server, brokers = tansu(args)
        sink_env = {"DRIVER": "kafka", "KAFKA_BROKERS": brokers, "KAFKA_TOPIC": "events"}
    elif args.sink == "sqs":
        server, queue = moto(args)
        sink_env = {"DRIVER": "sqs", "SQS_QUEUE_URL": queue}
    else:
        server, endpoint = s3s_fs(args, base / "s3")
        sink_env = {"S3_ENDPOINT": endpoint, "S3_MULTIPART_BYTES": args.multipart_bytes}
    proc = plutos(args, spool, {**sink_env, "UPLOAD_CONCURRENCY": str(concurrency)})
    try:
        ticks, server_ticks, start = cpu_ticks([proc.pid]), cpu_ticks([server.pid]), time.monotonic()
        deadline = start + 600
        while metric(args.port, "plutos_chunks_shipped_total") < chunks:
            if time.monotonic() > deadline:
                raise RuntimeError("shipping took over 10 minutes")
            time.sleep(0.02)
        seconds = time.monotonic() - start
        cpu_s = (cpu_ticks([proc.pid]) - ticks) / CLK_TCK
        server_cpu_s = (cpu_ticks([server.pid]) - server_ticks) / CLK_TCK
        shipped = metric(args.port, "plutos_bytes_shipped_total")
        events = metric(args.port, "plutos_events_shipped_total")
        failures = metric(args.port, 'plutos_upload_failures_total{kind="retryable"}')
        batches = metric(args.port, "plutos_sqs_batches_total") if args.sink == "sqs" else 0
    finally:
        stop(proc)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(base, ignore_errors=True)
    return {"concurrency": concurrency, "seconds": seconds, "mb_per_s": shipped / seconds / 1e6,
            "chunks_per_s": chunks / seconds, "cpu_s_per_gb": cpu_s / (shipped / 1e9), "cpu_share": cpu_s / seconds,
            "server_cpu_share": server_cpu_s / seconds, "failures": failures, "events_per_s": events / seconds,
            "cpu_us_per_event": cpu_s * 1e6 / events, "batch": events / batches if batches else 0}


def main():
    parser = argparse.ArgumentParser()
    allowed = sorted(os.sched_getaffinity(0))
    half = max(1, len(allowed) // 2)
    parser.add_argument("--server-cpus", default=",".join(map(str, allowed[:half])))
    parser.add_argument("--load-cpus", default=",".join(map(str, allowed[half:] or allowed[:1])))
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--codec", default="gzip6", choices=sorted(CODECS))
    parser.add_argument("--fill-seconds", type=int, default=10)
    parser.add_argument("--fill-scenario", default="get_pipelined", help="the wrk scenario that fills the spool")
    parser.add_argument("--backlog-mb", type=float, default=1024, help="MiB of sealed chunks each run ships")
    parser.add_argument("--chunk-bytes", default="8MiB", help="MAX_CHUNK_BYTES while filling")
    parser.add_argument("--multipart-bytes", default="16MiB", help="S3_MULTIPART_BYTES while shipping")
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", default=None)
    parser.add_argument("--binary", default=str(BIN), help="the plutos binary that fills and ships (default: this build)")
    parser.add_argument("--sink", default="s3", choices=["s3", "kafka", "sqs"], help="where the ship step sends chunks")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="plutos-upload-", dir=os.environ.get("TMPDIR", "/var/tmp")) as work:
        work = Path(work)
        spool, filled = fill(args, work)
        filled["chunks"], filled["bytes"] = grow_backlog(spool, int(args.backlog_mb * (1 << 20)))
        print(f"fill: {filled['events_per_s']:,.0f} events/s, sealed {filled['sealed_mb_per_s_core']:.1f} MB/s per "
              f"core; backlog {filled['chunks']} chunks, {filled['bytes'] / 1e6:.0f} MB", flush=True)
        results = []
        for round_no in range(1, args.rounds + 1):
            for c in concurrencies:
                r = ship(args, work, spool, c, round_no)
                results.append(r)
                print(f"round {round_no} concurrency {c}: {r['events_per_s']:,.0f} events/s, "
                      f"{r['cpu_us_per_event']:.3f} plutos CPU µs/event, {r['mb_per_s']:.1f} MB/s, {r['chunks_per_s']:.1f} chunks/s, "
                      f"{r['cpu_s_per_gb']:.2f} CPU s/GB, plutos CPU {100 * r['cpu_share']:.0f}%, "
                      f"{args.sink} server CPU {100 * r['server_cpu_share']:.0f}%, "
                      f"retryable failures {r['failures']:.0f}"
                      + (f", {r['batch']:.2f} messages per batch" if args.sink == "sqs" else ""), flush=True)
    write(args, filled, results, concurrencies)


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2


def write(args, filled, results, concurrencies):
    now = datetime.now(timezone.utc)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    name = f"{now:%Y-%m-%d}-upload{'' if args.sink == 's3' else '-' + args.sink}-{platform.node()}.md"
    path = Path(args.results) if args.results else ROOT / "bench" / "results" / name
    out = [f"# plutos upload benchmark, {now:%Y-%m-%d %H:%M} UTC\n",
           f"- command: `scripts/bench.sh --upload {' '.join(sys.argv[1:])}`",
           f"- commit `{commit}`; CPU {cpu_model}; {os.cpu_count()} CPUs; kernel {platform.release()}",
           f"- plutos on CPUs `{args.server_cpus}`, wrk and s3s-fs 0.14.1 on CPUs `{args.load_cpus}`; codec {args.codec}; "
           f"chunks up to MAX_CHUNK_BYTES={args.chunk_bytes}; S3_MULTIPART_BYTES={args.multipart_bytes}; "
           f"{args.rounds} round(s), medians\n",
           f"Fill: `{args.fill_scenario}` for {filled['seconds']:.1f} s with the S3 endpoint refusing: "
           f"{filled['events_per_s']:,.0f} events/s, sealed {filled['sealed_mb_per_s_core']:.1f} MB/s per server core; "
           f"its chunks, hard-linked under more chunk numbers, make a backlog of {filled['chunks']} chunks, "
           f"{filled['bytes'] / 1e6:.2f} MB, shipped by each run below (read from the page cache, as freshly sealed "
           f"chunks are).\n",
           "| UPLOAD_CONCURRENCY | MB/s shipped | chunks/s | plutos CPU s per GB shipped | plutos CPU (share of one core) | s3s-fs CPU | cores one uploader follows |",
           "|---:|---:|---:|---:|---:|---:|---:|"]
    if args.sink == "sqs":
        out[3] = out[3].replace("s3s-fs 0.14.1", "moto 5.2.6's SQS server (one Python process, a standard queue)")
        out[-2:] = ["| UPLOAD_CONCURRENCY | events/s sent | plutos CPU µs per event | plutos CPU (share of one core) "
                    "| moto CPU | messages per SendMessageBatch |", "|---:|---:|---:|---:|---:|---:|"]
        for c in concurrencies:
            runs = [r for r in results if r["concurrency"] == c]
            out.append(f"| {c} | {median([r['events_per_s'] for r in runs]):,.0f} | "
                       f"{median([r['cpu_us_per_event'] for r in runs]):.2f} | "
                       f"{100 * median([r['cpu_share'] for r in runs]):.0f}% | "
                       f"{100 * median([r['server_cpu_share'] for r in runs]):.0f}% | "
                       f"{median([r['batch'] for r in runs]):.2f} |")
        out.append("\nmoto (Python, one process) bounds events/s here, and at its rate plutos's CPU is mostly its idle "
                   "loops and this harness's /metrics scrapes: the µs per event are an upper bound, not a cost per message.")
        path.write_text("\n".join(out) + "\n")
        print(f"results written to {path}")
        return
    if args.sink == "kafka":
        out[3] = out[3].replace("s3s-fs 0.14.1", "tansu 0.6.0 (memory storage, 3 partitions)")
        out[-2:] = ["| UPLOAD_CONCURRENCY | events/s produced | plutos CPU µs per event | plutos CPU (share of one core) "
                    "| tansu CPU | cores one uploader follows | target ≤ 0.3 µs/event and ≥ 4 cores |",
                    "|---:|---:|---:|---:|---:|---:|---|"]
        per_core = filled["events_per_s"] / len(cpu_list(args.server_cpus))
        for c in concurrencies:
            runs = [r for r in results if r["concurrency"] == c]
            eps, us = median([r["events_per_s"] for r in runs]), median([r["cpu_us_per_event"] for r in runs])
            out.append(f"| {c} | {eps:,.0f} | {us:.3f} | {100 * median([r['cpu_share'] for r in runs]):.0f}% | "
                       f"{100 * median([r['server_cpu_share'] for r in runs]):.0f}% | {eps / per_core:.2f} | "
                       f"{'met' if us <= 0.3 and eps / per_core >= 4 else '**missed**'} |")
        out.append(f"\n\"Cores one uploader follows\" = events/s produced ÷ events/s one server core accepted under "
                   f"`{args.fill_scenario}` ({per_core:,.0f}).")
        path.write_text("\n".join(out) + "\n")
        print(f"results written to {path}")
        return
    for c in concurrencies:
        runs = [r for r in results if r["concurrency"] == c]
        mbps = median([r["mb_per_s"] for r in runs])
        out.append(f"| {c} | {mbps:.1f} | {median([r['chunks_per_s'] for r in runs]):.1f} | "
                   f"{median([r['cpu_s_per_gb'] for r in runs]):.2f} | {100 * median([r['cpu_share'] for r in runs]):.0f}% | "
                   f"{100 * median([r['server_cpu_share'] for r in runs]):.0f}% | "
                   f"{mbps / filled['sealed_mb_per_s_core']:.1f} |")
    out.append(f"\n\"Cores one uploader follows\" = MB/s shipped ÷ MB/s a server core seals under `{args.fill_scenario}`. "
               "s3s-fs, on the other CPU, writes every object to disk and checks its checksums; when its CPU share is "
               "near 100% it, not plutos, limits MB/s. plutos's own ceiling is about 1 ÷ (CPU s per GB) GB/s per core.")
    path.write_text("\n".join(out) + "\n")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
