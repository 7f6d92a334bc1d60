#!/usr/bin/env python3
"""The plutos benchmark harness (run it through scripts/bench.sh, which installs the tools and builds).

Every scenario (a wrk Lua script in bench/wrk/) runs against every target (plutos in several configurations, and
nginx as the baseline), interleaved target by target within each round, with the server pinned to the server CPUs
and wrk to the load CPUs. Per run it records req/s, events/s, p50/p99 latency, the server's CPU time per request
and per event (all its threads, from /proc/PID/stat), its peak RSS (VmHWM), and for plutos whether the records it
shipped equal its 2xx events (within what was in flight when wrk stopped). A separate run measures plutos's RSS
while holding 10,000 idle keep-alive connections. Medians, ratios and the targets go to bench/results/.
"""

import argparse
import gzip
import os
import platform
import re
import signal
import socket
import ssl
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

PLUTOS_TARGETS = {
    "plutos-gzip6-spool": {"COMPRESSION_TYPE": "gzip", "COMPRESSION_LEVEL": "6", "DURABILITY": "spool"},
    # The same on the io_uring loop (every other target runs the epoll loop).
    "plutos-gzip6-spool-uring": {"COMPRESSION_TYPE": "gzip", "COMPRESSION_LEVEL": "6", "DURABILITY": "spool",
                                 "IO_BACKEND": "uring"},
    "plutos-gzip6-memory": {"COMPRESSION_TYPE": "gzip", "COMPRESSION_LEVEL": "6", "DURABILITY": "memory"},
    "plutos-gzip1-spool": {"COMPRESSION_TYPE": "gzip", "COMPRESSION_LEVEL": "1", "DURABILITY": "spool"},
    "plutos-gzip1-memory": {"COMPRESSION_TYPE": "gzip", "COMPRESSION_LEVEL": "1", "DURABILITY": "memory"},
    "plutos-zstd3-spool": {"COMPRESSION_TYPE": "zstd", "COMPRESSION_LEVEL": "3", "DURABILITY": "spool"},
    "plutos-zstd3-memory": {"COMPRESSION_TYPE": "zstd", "COMPRESSION_LEVEL": "3", "DURABILITY": "memory"},
    "plutos-none-spool": {"COMPRESSION_TYPE": "none", "DURABILITY": "spool"},
    # Enrichment on: GeoIP (GeoLite2 City, scripts/geo-data.sh --city), user-agent parsing and bot flags. Its
    # counterpart without them is plutos-gzip6-spool; both trust 127.0.0.1's X-Forwarded-For (every target does).
    "plutos-gzip6-spool-enriched": {"COMPRESSION_TYPE": "gzip", "COMPRESSION_LEVEL": "6", "DURABILITY": "spool",
                                    "GEOIP_DB": "@CITY_MMDB@", "UA_PARSE": "on", "BOTS": "flag"},
    # Validation on: the Iglu Central schemas of tests/data/iglu (Snowplow's events and contexts), VALIDATION=flag.
    # Its counterpart without it is plutos-gzip6-spool.
    "plutos-gzip6-spool-validated": {"COMPRESSION_TYPE": "gzip", "COMPRESSION_LEVEL": "6", "DURABILITY": "spool",
                                     "SCHEMAS_DIR": str(ROOT / "tests" / "data" / "iglu"), "VALIDATION": "flag"},
    # A tracking plan (bench/plan): every Segment "Order Completed" validated against its schema, VALIDATION=reject.
    "plutos-gzip6-spool-planned": {"COMPRESSION_TYPE": "gzip", "COMPRESSION_LEVEL": "6", "DURABILITY": "spool",
                                   "SCHEMAS_DIR": str(ROOT / "bench" / "plan"),
                                   "TRACKING_PLAN": str(ROOT / "bench" / "plan" / "plan.json")},
}
FLOORS = {"floor": ROOT / "target" / "release" / "examples" / "floor",
          "floor-uring": ROOT / "target" / "release" / "examples" / "floor_uring"}
for _name, _env in PLUTOS_TARGETS.items():
    _env.setdefault("IO_BACKEND", "epoll")
TARGETS = list(PLUTOS_TARGETS) + ["nginx"] + list(FLOORS)
URING = "plutos-gzip6-spool-uring"
TLS_LOAD = ROOT / "target" / "release" / "examples" / "tls_load"
H3_LOAD = ROOT / "target" / "release" / "examples" / "h3_load"
# scenario -> (requests pipelined per write, description)
SCENARIOS = {
    "get_simple": (1, "GET /e?test=me (the article's request)"),
    "get_pixel": (1, "GET /e with a 10-parameter pixel query and a browser User-Agent"),
    "post_json": (1, "POST /e, one ~300-byte JSON event"),
    "post_ndjson": (1, "POST /e, NDJSON batch of 100 events"),
    "post_segment_batch": (1, "POST /v1/batch, a Segment batch of 100 events as segment-analytics-python sends them"),
    "post_ndjson_sdk_events": (1, "POST /e, the same 100 events as post_segment_batch as NDJSON (like for like)"),
    "post_snowplow_tp2": (1, "POST tp2, 100 events (page views and link clicks, each with a web_page context)"),
    "get_pipelined": (16, "GET /e?test=me pipelined 16 deep"),
    "get_close": (1, "GET /e?test=me, one request per connection (Connection: close)"),
    "get_simple_varied": (1, "get_simple from 10,000 clients (X-Forwarded-For) with 1,000 real user agents, Zipf-like"),
    "post_ndjson_varied": (1, "post_ndjson from 10,000 clients (X-Forwarded-For) with 1,000 real user agents, Zipf-like"),
    "get_simple_tls": (1, "get_simple over HTTPS (TLS 1.3, ECDSA P-256, keep-alive)"),
    "get_close_tls": (1, "get_close over HTTPS: a TLS handshake per request, resumed (wrk offers the last session)"),
    "get_close_tls_full": (1, "get_close over HTTPS: a full TLS 1.3 handshake per request (examples/tls_load, no resumption)"),
    "get_simple_h2_tls": (1, "get_simple over HTTP/2 with TLS (ALPN h2; h2load, 10 streams in flight per connection)"),
    "grpc_send_100": (1, "plutos.v1.Collector/Send over h2c, post_ndjson's 100 events per call (h2load, 10 streams)"),
    "otlp_export_100": (1, "OTLP LogsService/Export over h2c, 100 log records per call (h2load, 10 streams)"),
    "post_ndjson_otlp_events": (1, "POST /e, otlp_export_100's 100 events as NDJSON, each line what its record stores"),
    "get_simple_h3_tls": (1, "get_simple over HTTP/3 (QUIC; examples/h3_load, 10 streams in flight per connection)"),
    "get_close_h3_tls": (1, "one request per QUIC connection, each handshake resumed (examples/h3_load --handshakes --resume)"),
    "get_close_h3_tls_full": (1, "one request per QUIC connection, a full TLS 1.3 handshake each (examples/h3_load --handshakes)"),
}
# HTTP/2 scenarios run h2load (Debian's nghttp2-client) with this many streams in flight on each connection:
# scenario -> (path, body file made by examples/grpc_bodies.rs or None, events per request). Only plutos serves
# the gRPC ones.
H2_STREAMS = 10
H2_LOADS = {
    "get_simple_h2_tls": ("/e?test=me", None, 1),
    "grpc_send_100": ("/plutos.v1.Collector/Send", "send_100.bin", 100),
    "otlp_export_100": ("/opentelemetry.proto.collector.logs.v1.LogsService/Export", "otlp_100.bin", 100),
}
GRPC_BODIES = ROOT / "target" / "release" / "examples" / "grpc_bodies"
ENRICHED = "plutos-gzip6-spool-enriched"
VALIDATED = "plutos-gzip6-spool-validated"
PLANNED = "plutos-gzip6-spool-planned"
IDLE_CONNECTIONS = 10_000


def tls_scenario(scenario):
    return "_tls" in scenario


def h3_scenario(scenario):
    """Served by plutos only (nginx 1.22 has no HTTP/3), with QUIC_PORT on the HTTPS port's number."""
    return "_h3_" in scenario


def make_certificate(work):
    """An ECDSA P-256 certificate for 127.0.0.1 (openssl), the same for plutos and nginx."""
    cert, key = Path(work) / "tls.pem", Path(work) / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait_port(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


def wait_serving(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server did not start serving")


class Plutos:
    def __init__(self, name, args, work, binary=BIN, tls=False, quic=False):
        self.name, self.args = name, args
        self.dir = Path(tempfile.mkdtemp(dir=work, prefix=name + "-"))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PORT": f"127.0.0.1:{args.port}",
            "WORKERS": str(len(cpu_list(args.server_cpus))),
            "SPOOL_DIR": str(self.dir / "spool"),
            "OUT_DIR": str(self.dir / "out"),
            "DRAIN_SECONDS": "0",
            "LOG_LEVEL": "warn",
            "MAX_CONNECTIONS": "200000",
            "TRUSTED_PROXIES": "127.0.0.1/32",
        }
        env.update({k: v.replace("@CITY_MMDB@", args.city_mmdb or "") for k, v in PLUTOS_TARGETS[name].items()})
        if tls:
            # HTTPS on the next port; the plain one stays for the start-up checks and /metrics.
            env.update({"TLS_PORT": f"127.0.0.1:{args.port + 1}", "TLS_CERT": str(args.cert), "TLS_KEY": str(args.key)})
        if quic:
            env["QUIC_PORT"] = f"127.0.0.1:{args.port + 1}"
        self.env = env
        self.command = ["taskset", "-c", args.server_cpus, str(binary)]
        self.proc = subprocess.Popen(self.command, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "stderr", "w"))
        wait_port(args.port, self.proc)
        # The port is bound before the start-up work (the spool's recovery, GeoIP databases, the user-agent
        # lists); its CPU must not count in the run.
        wait_serving(args.port, self.proc)

    def pids(self):
        return [self.proc.pid]

    def describe(self):
        hidden = ("PATH", "SPOOL_DIR", "OUT_DIR", "TLS_CERT", "TLS_KEY")
        settings = " ".join(f"{k}={v}" for k, v in self.env.items() if k not in hidden)
        return f"{settings} {' '.join(self.command)}"

    def metrics(self):
        """The enrichment counters of /metrics: {(kind, result): n}."""
        with socket.create_connection(("127.0.0.1", self.args.port)) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            text = b"".join(iter(lambda: s.recv(65536), b"")).decode()
        found = re.findall(r'plutos_enrich_lookups_total\{kind="(\w+)",result="(\w+)"\} (\d+)', text)
        return {(kind, result): int(n) for kind, result, n in found}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        if self.proc.wait(timeout=120) != 0:
            raise RuntimeError(f"plutos exited with {self.proc.returncode}")
        return count_shipped(self.dir / "out")


class Nginx:
    def __init__(self, args, work):
        self.dir = Path(tempfile.mkdtemp(dir=work, prefix="nginx-"))
        cpus = cpu_list(args.server_cpus)
        masks = " ".join(bin(1 << c)[2:] for c in cpus)
        conf = (ROOT / "bench" / "nginx" / "nginx.conf.template").read_text()
        conf = conf.replace("@DIR@", str(self.dir)).replace("@PORT@", str(args.port))
        conf = conf.replace("@WORKERS@", str(len(cpus))).replace("@CPU_MASK@", masks)
        conf = conf.replace("@TLS_PORT@", str(args.port + 1)).replace("@CERT@", str(args.cert)).replace("@KEY@", str(args.key))
        (self.dir / "nginx.conf").write_text(conf)
        self.command = ["taskset", "-c", args.server_cpus, "/usr/sbin/nginx", "-c", str(self.dir / "nginx.conf"),
                        "-p", str(self.dir)]
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(args.port, self.proc)
        deadline = time.monotonic() + 10
        while not self.workers() and time.monotonic() < deadline:
            time.sleep(0.05)

    def workers(self):
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def pids(self):
        return [self.proc.pid] + self.workers()

    def describe(self):
        return f"{' '.join(self.command)} (bench/nginx/nginx.conf.template)"

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)
        self.proc.wait(timeout=60)
        return None

    def sessions_reused(self):
        """Of the HTTPS requests nginx logged, how many came on a resumed TLS session: (reused, all)."""
        path = self.dir / "events-tls.log.gz"
        if not path.exists():
            return None
        with gzip.open(path, "rt") as f:
            lines = f.read().splitlines()
        return sum(1 for l in lines if l.endswith('"reused":"r"}')), len(lines)


class Floor:
    """examples/floor.rs (`floor`: one epoll thread) or examples/floor_uring.rs (`floor-uring`: one io_uring thread),
    which answer every request end with a fixed 200 and store nothing."""

    def __init__(self, args, work, target):
        self.target = target
        self.command = ["taskset", "-c", args.server_cpus, str(FLOORS[target])]
        self.proc = subprocess.Popen(self.command, env={"PORT": f"127.0.0.1:{args.port}"},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(args.port, self.proc)

    def pids(self):
        return [self.proc.pid]

    def describe(self):
        return f"PORT=127.0.0.1:PORT {' '.join(self.command)} (examples/{FLOORS[self.target].name}.rs)"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        return None


def count_shipped(out_dir):
    lines = 0
    for path in out_dir.rglob("*"):
        if path.name.endswith(".ndjson.gz"):
            with gzip.open(path, "rb") as f:
                lines += sum(1 for _ in f)
        elif path.name.endswith(".ndjson.zst"):
            data = subprocess.run(["zstd", "-dcq", str(path)], capture_output=True, check=True).stdout
            lines += data.count(b"\n")
        elif path.name.endswith(".ndjson"):
            lines += path.read_bytes().count(b"\n")
    return lines


def cpu_list(spec):
    cpus = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            cpus.extend(range(int(a), int(b) + 1))
        else:
            cpus.append(int(part))
    return cpus


def h2_scenario(scenario):
    return scenario in H2_LOADS


def wrk_command(args, scenario):
    threads = len(cpu_list(args.load_cpus))
    if h2_scenario(scenario):
        seconds = str(int(args.duration.rstrip("s")))
        path, body, _ = H2_LOADS[scenario]
        url = f"https://127.0.0.1:{args.port + 1}{path}" if tls_scenario(scenario) else f"http://127.0.0.1:{args.port}{path}"
        command = ["taskset", "-c", args.load_cpus, "h2load", f"-t{threads}", f"-c{args.connections}",
                   f"-m{H2_STREAMS}", f"-D{seconds}"]
        if body:
            command += ["-d", str(Path(args.work) / body), "-H", "content-type: application/grpc", "-H", "te: trailers"]
        return command + [url]
    if h3_scenario(scenario):
        seconds = str(int(args.duration.rstrip("s")))
        handshakes = {"get_close_h3_tls": ["--handshakes", "--resume"], "get_close_h3_tls_full": ["--handshakes"]}
        return ["taskset", "-c", args.load_cpus, str(H3_LOAD), f"127.0.0.1:{args.port + 1}", "/e?test=me",
                str(args.connections), str(H2_STREAMS), seconds] + handshakes.get(scenario, [])
    if scenario == "get_close_tls_full":
        seconds = str(int(args.duration.rstrip("s")))
        return ["taskset", "-c", args.load_cpus, str(TLS_LOAD), f"127.0.0.1:{args.port + 1}", str(args.connections), seconds]
    url = f"https://127.0.0.1:{args.port + 1}" if tls_scenario(scenario) else f"http://127.0.0.1:{args.port}"
    return ["taskset", "-c", args.load_cpus, "wrk", f"-t{threads}", f"-c{args.connections}", f"-d{args.duration}",
            "-s", f"bench/wrk/{scenario}.lua", url]


def run_one(args, work, target, scenario):
    tls = tls_scenario(scenario)
    if not target.startswith("plutos") and h2_scenario(scenario) and H2_LOADS[scenario][1]:
        return None  # gRPC: plutos's own services
    if not target.startswith("plutos") and h3_scenario(scenario):
        return None
    if target == "nginx":
        server = Nginx(args, work)
    elif target in FLOORS:
        if tls:
            return None  # the floors speak no TLS
        server = Floor(args, work, target)
    elif target.endswith("@base"):
        server = Plutos(target.removesuffix("@base"), args, work, binary=Path(args.compare).resolve(), tls=tls)
    else:
        server = Plutos(target, args, work, tls=tls, quic=h3_scenario(scenario))
    try:
        pids = server.pids()
        before = cpu_ticks(pids)
        out = subprocess.run(wrk_command(args, scenario), cwd=ROOT, capture_output=True, text=True, check=True).stdout
        after = cpu_ticks(pids)
        rss_kib = sum(status_kib(p, "VmHWM") for p in pids)
        describe = server.describe()
        lookups = server.metrics() if isinstance(server, Plutos) else {}
    finally:
        shipped = server.stop()
    reused = server.sessions_reused() if isinstance(server, Nginx) and tls else None
    report = h2load_report(out, args, H2_LOADS[scenario][2]) if h2_scenario(scenario) else wrk_report(out)
    requests, seconds = report["requests"], report["duration_us"] / 1e6
    # nginx writes one log line per request whatever the body holds, and the floor stores nothing: their events
    # are their requests.
    per_request = 1 if target == "nginx" or target in FLOORS else report["events_per_request"]
    ok_events = (requests - report["non2xx"]) * per_request
    depth = H2_STREAMS if h2_scenario(scenario) else SCENARIOS[scenario][0]
    in_flight = args.connections * depth * per_request
    cpu_s = (after - before) / CLK_TCK
    result = {
        "target": target, "scenario": scenario, "rps": requests / seconds, "eps": requests * per_request / seconds,
        # wrk records no latency for pipelined requests (it reports 0): shown as n/a.
        "p50_ms": report["p50_us"] / 1000 or None, "p99_ms": report["p99_us"] / 1000 or None, "non2xx": report["non2xx"],
        "socket_errors": report["socket_errors"], "cpu_us_req": cpu_s * 1e6 / requests,
        "cpu_us_event": cpu_s * 1e6 / (requests * per_request), "rss_mib": rss_kib / 1024,
        "ok_events": ok_events, "shipped": shipped, "server": describe, "lookups": lookups, "reused": reused,
        # Connections opened per second of server CPU (one per request with Connection: close).
        "handshakes_per_cpu_s": requests / cpu_s if cpu_s else None,
    }
    if shipped is not None:
        result["shipped_ok"] = ok_events <= shipped <= ok_events + in_flight
    return result


def wrk_report(out):
    """The numbers of report.lua's REPORT line."""
    report = dict(re.findall(r"(\w+)=(\d+)", out.split("REPORT", 1)[1]))
    return {k: int(v) for k, v in report.items()}


def h2load_report(out, args, events_per_request):
    """h2load's summary in REPORT's terms (it has no latency percentiles: shown as n/a)."""
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not done or not codes:
        raise RuntimeError(f"h2load said:\n{out}")
    requests = int(done.group(1))
    return {"requests": requests, "duration_us": int(args.duration.rstrip("s")) * 1_000_000, "p50_us": 0, "p99_us": 0,
            "non2xx": requests - int(codes.group(1)), "socket_errors": int(done.group(4)),
            "events_per_request": events_per_request}


def idle_rss(args, work, tls=False, target="plutos-gzip6-spool"):
    """plutos (gzip6, spool; `target` names the event loop) RSS after 10,000 keep-alive connections (with `tls`,
    HTTPS ones: TLS 1.3, each with its handshake done) each made one request and went idle."""
    server = Plutos(target, args, work, tls=tls)
    conns = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        request = b"GET /e?idle=1 HTTP/1.1\r\nHost: bench\r\n\r\n"
        for _ in range(IDLE_CONNECTIONS):
            s = socket.create_connection(("127.0.0.1", args.port + 1 if tls else args.port))
            if tls:
                s = context.wrap_socket(s)
            s.sendall(request)
            conns.append(s)
        for s in conns:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("connection closed while idle test was setting up")
                data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"idle test request failed: {data[:40]!r}")
        pid = server.proc.pid
        return status_kib(pid, "VmRSS") / 1024, status_kib(pid, "VmHWM") / 1024
    finally:
        for s in conns:
            s.close()
        server.stop()


def median(results, target, scenario, key):
    values = [r[key] for r in results if r["target"] == target and r["scenario"] == scenario and r[key] is not None]
    return statistics.median(values) if values else None


def paired(results, target, base, scenario, key):
    """The median over rounds of target's value / base's in the same round: the two ran one after the other, so
    drift of the machine between rounds (±15% on a shared VM) cancels out of each ratio."""
    by_round = {}
    for r in results:
        if r["scenario"] == scenario and r[key] is not None and r["target"] in (target, base):
            by_round.setdefault(r["round"], {})[r["target"]] = r[key]
    ratios = [v[target] / v[base] for v in by_round.values() if target in v and base in v and v[base]]
    return statistics.median(ratios) if ratios else None


def ms(value):
    return "n/a" if value is None else f"{value:.2f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--server-cpus", default=None)
    parser.add_argument("--load-cpus", default=None)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s")
    parser.add_argument("--results", default=None, help="results file (default bench/results/<date>-<host>.md)")
    parser.add_argument("--city-mmdb", default=os.environ.get("PLUTOS_GEO_CITY_MMDB"),
                        help="the GeoIP database of the enriched target (bench.sh: scripts/geo-data.sh --city)")
    parser.add_argument("--compare", default=None, metavar="BIN",
                        help="also run every plutos target with this binary (as TARGET@base), interleaved: before/after")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, "3s"
    allowed = sorted(os.sched_getaffinity(0))
    half = max(1, len(allowed) // 2)
    args.server_cpus = args.server_cpus or ",".join(map(str, allowed[:half]))
    args.load_cpus = args.load_cpus or ",".join(map(str, allowed[half:] or allowed[:1]))
    scenarios = args.scenarios.split(",")
    targets = args.targets.split(",")
    if args.compare:
        targets = [t for target in targets
                   for t in ([target, target + "@base"] if target.startswith("plutos") else [target])]

    results = []
    with tempfile.TemporaryDirectory(prefix="plutos-bench-") as work:
        args.cert, args.key = make_certificate(work)
        args.work = work
        if any(h2_scenario(sc) and H2_LOADS[sc][1] for sc in scenarios):
            subprocess.run([str(GRPC_BODIES), work], check=True)
        for round_no in range(1, args.rounds + 1):
            for scenario in scenarios:
                for target in targets:
                    r = run_one(args, work, target, scenario)
                    if r is None:
                        continue
                    r["round"] = round_no
                    results.append(r)
                    print(f"round {round_no} {scenario:14} {target:20} {r['rps']:>11.0f} req/s {r['eps']:>11.0f} ev/s "
                          f"{r['cpu_us_req']:6.2f} us/req p99 {r['p99_ms'] or 0:6.2f} ms rss {r['rss_mib']:6.1f} MiB "
                          f"shipped {r.get('shipped_ok', '-')}", flush=True)
        idle = idle_rss(args, work) if "plutos-gzip6-spool" in targets else None
        tls_scenarios = any(tls_scenario(sc) for sc in scenarios)
        idle_tls = idle_rss(args, work, tls=True) if "plutos-gzip6-spool" in targets and tls_scenarios else None
        if idle_tls:
            idle = idle + idle_tls if idle else (None, None) + idle_tls
        idle_uring = idle_rss(args, work, target=URING) if URING in targets else None
    write_results(args, scenarios, targets, results, idle, idle_uring)


def write_results(args, scenarios, targets, results, idle, idle_uring=None):
    now = datetime.now(timezone.utc)
    host = platform.node()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet"], cwd=ROOT).returncode != 0
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    path = Path(args.results) if args.results else ROOT / "bench" / "results" / f"{now:%Y-%m-%d}-{host}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    w = out.append
    w(f"# plutos benchmark, {now:%Y-%m-%d %H:%M} UTC\n")
    w(f"- command: `scripts/bench.sh {' '.join(sys.argv[1:])}`")
    w(f"- commit `{commit}`{' (with uncommitted changes)' if dirty else ''}; host `{host}`; CPU {cpu_model}; "
      f"{os.cpu_count()} CPUs; kernel {platform.release()}")
    w(f"- server CPUs `{args.server_cpus}`, load CPUs `{args.load_cpus}`; {args.rounds} round(s) of {args.duration} per "
      f"run, targets interleaved within each round; the table shows medians")
    example = next((r for r in results if r["target"].startswith("plutos")), None)
    w(f"- load: `{' '.join(wrk_command(args, '<scenario>'))}`")
    if example:
        w(f"- plutos: `{example['server']}` with COMPRESSION_TYPE / COMPRESSION_LEVEL / DURABILITY / IO_BACKEND per "
          f"target")
    if args.compare:
        w(f"- `TARGET@base` rows: the same settings with the binary `{args.compare}`, interleaved with this build")
    nginx = next((r for r in results if r["target"] == "nginx"), None)
    if nginx:
        w(f"- nginx: `{nginx['server']}`")
    for name, kind in (("floor", "epoll"), ("floor-uring", "io_uring")):
        floor = next((r for r in results if r["target"] == name), None)
        if floor:
            w(f"- {name}: `{floor['server']}`: one {kind} thread, a fixed 200 per request end, nothing parsed or stored")
    w("- CPU µs = utime + stime of every server thread during the wrk run, divided by requests (or events)")
    w("- shipped: records in the sink after a graceful stop equal the 2xx events, within what was in flight\n")
    for scenario in scenarios:
        w(f"## {scenario}: {SCENARIOS[scenario][1]}\n")
        w("| target | req/s | events/s | p50 ms | p99 ms | CPU µs/req | CPU µs/event | peak RSS MiB | non-2xx | shipped = 2xx |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for target in targets:
            m = lambda k: median(results, target, scenario, k)
            if m("rps") is None:
                continue
            runs = [r for r in results if r["target"] == target and r["scenario"] == scenario]
            shipped = "n/a" if target == "nginx" or target in FLOORS else ("yes" if all(r["shipped_ok"] for r in runs) else "**NO**")
            w(f"| {target} | {m('rps'):.0f} | {m('eps'):.0f} | {ms(m('p50_ms'))} | {ms(m('p99_ms'))} | "
              f"{m('cpu_us_req'):.2f} | {m('cpu_us_event'):.3f} | {m('rss_mib'):.1f} | {sum(r['non2xx'] for r in runs)} | {shipped} |")
        base = median(results, "nginx", scenario, "cpu_us_req")
        base_rps = median(results, "nginx", scenario, "rps")
        if base:
            w("\nplutos / nginx: " + ", ".join(
                f"{t} CPU/req ×{median(results, t, scenario, 'cpu_us_req') / base:.2f} req/s ×"
                f"{median(results, t, scenario, 'rps') / base_rps:.2f}"
                for t in targets if t.startswith("plutos") and median(results, t, scenario, "rps") is not None))
            w("\nplutos / nginx, the median of each round's ratio: " + ", ".join(
                f"{t} CPU/req ×{paired(results, t, 'nginx', scenario, 'cpu_us_req'):.2f}"
                for t in targets if t.startswith("plutos") and paired(results, t, "nginx", scenario, "cpu_us_req")))
        if tls_scenario(scenario):
            reused = [r["reused"] for r in results if r["target"] == "nginx" and r["scenario"] == scenario and r["reused"]]
            if reused:
                w(f"\nnginx's log: {sum(r for r, _ in reused):,} of {sum(n for _, n in reused):,} HTTPS requests on a "
                  f"resumed TLS session")
            if scenario.startswith("get_close"):
                w("\nhandshakes per second of server CPU (one per request): " + ", ".join(
                    f"{t} {median(results, t, scenario, 'handshakes_per_cpu_s'):,.0f}"
                    for t in targets if median(results, t, scenario, "rps") is not None))
        for name in FLOORS:
            floor = median(results, name, scenario, "cpu_us_req")
            if floor:
                w(f"\n… / {name}: " + ", ".join(
                    f"{t} CPU/req ×{median(results, t, scenario, 'cpu_us_req') / floor:.3f}"
                    for t in targets if t != name and median(results, t, scenario, "rps") is not None))
        pairs = [(t, t + "@base") for t in targets if t + "@base" in targets]
        if args.compare and pairs:
            w("\nthis build / base build: " + ", ".join(
                f"{t} CPU/event ×{median(results, t, scenario, 'cpu_us_event') / median(results, b, scenario, 'cpu_us_event'):.2f} "
                f"events/s ×{median(results, t, scenario, 'eps') / median(results, b, scenario, 'eps'):.2f}"
                for t, b in pairs if median(results, b, scenario, "eps")))
        w("")
    w("## Targets\n")
    w("| target | measured | met |")
    w("|---|---|---|")

    def line(name, value, met):
        w(f"| {name} | {value} | {'yes' if met else '**no**'} |")

    for scenario in ("get_simple", "get_pixel"):
        p = median(results, "plutos-gzip6-spool", scenario, "cpu_us_req")
        n = median(results, "nginx", scenario, "cpu_us_req")
        if p and n:
            line(f"{scenario}: plutos (spool, gzip 6) CPU/req ≤ 1/3 of nginx", f"{p:.2f} µs vs {n:.2f} µs (×{p / n:.2f})",
                 p <= n / 3)
    for scenario in ("get_pipelined", "post_ndjson"):
        for target, goal in (("plutos-zstd3-spool", 1e6), ("plutos-gzip1-spool", 1e6), ("plutos-gzip6-spool", 4e5)):
            e = median(results, target, scenario, "eps")
            if e:
                line(f"{scenario}: {target} ≥ {goal:,.0f} events/s", f"{e:,.0f}", e >= goal)
    # A base build (--compare) older than the SDK routes answers them 404: no figure of it counts here.
    for target in (t for t in targets if not t.endswith("@base")):
        segment = median(results, target, "post_segment_batch", "cpu_us_event")
        ndjson = median(results, target, "post_ndjson", "cpu_us_event")
        if target.startswith("plutos") and segment and ndjson:
            line(f"post_segment_batch: {target} CPU/event ≤ 1.3× post_ndjson's", f"{segment:.3f} µs vs {ndjson:.3f} µs "
                 f"(×{segment / ndjson:.2f})", segment <= 1.3 * ndjson)
        same = median(results, target, "post_ndjson_sdk_events", "cpu_us_event")
        if target.startswith("plutos") and segment and same:
            w(f"| post_segment_batch: {target} CPU/event against the same events through /e (information) | "
              f"{segment:.3f} µs vs {same:.3f} µs (×{segment / same:.2f}) | — |")
    for scenario in scenarios:
        for codec in ("gzip6", "gzip1", "zstd3"):
            s = median(results, f"plutos-{codec}-spool", scenario, "eps")
            m = median(results, f"plutos-{codec}-memory", scenario, "eps")
            if s and m:
                line(f"{scenario} {codec}: spool ≥ 90% of memory", f"{100 * s / m:.0f}%", s >= 0.9 * m)
    on = median(results, VALIDATED, "post_snowplow_tp2", "cpu_us_event")
    off = median(results, "plutos-gzip6-spool", "post_snowplow_tp2", "cpu_us_event")
    if on and off:
        line("post_snowplow_tp2: validated (VALIDATION=flag) CPU/event ≤ 1.3× without SCHEMAS_DIR",
             f"{on:.3f} µs vs {off:.3f} µs (×{on / off:.2f})", on <= 1.3 * off)
    on = median(results, PLANNED, "post_segment_batch", "cpu_us_event")
    off = median(results, "plutos-gzip6-spool", "post_segment_batch", "cpu_us_event")
    if on and off:
        line("post_segment_batch: under a tracking plan (VALIDATION=reject) CPU/event ≤ 1.3× without",
             f"{on:.3f} µs vs {off:.3f} µs (×{on / off:.2f})", on <= 1.3 * off)
    for scenario in ("get_simple_varied", "post_ndjson_varied"):
        on, off = median(results, ENRICHED, scenario, "cpu_us_req"), median(results, "plutos-gzip6-spool", scenario, "cpu_us_req")
        if on and off:
            per_event = (median(results, ENRICHED, scenario, "cpu_us_event") - median(results, "plutos-gzip6-spool", scenario, "cpu_us_event"))
            line(f"{scenario}: enriched (geo + UA + bots) CPU/req ≤ 1.10× without", f"{on:.2f} µs vs {off:.2f} µs "
                 f"(×{on / off:.2f}; +{1000 * (on - off):.0f} ns/request, +{1000 * per_event:.0f} ns/event)", on <= 1.10 * off)
            runs = [r for r in results if r["target"] == ENRICHED and r["scenario"] == scenario]
            for kind in ("geo", "user_agent"):
                hit = sum(r["lookups"].get((kind, "hit"), 0) for r in runs)
                miss = sum(r["lookups"].get((kind, "miss"), 0) for r in runs)
                internal = sum(r["lookups"].get((kind, "internal"), 0) for r in runs)
                if hit + miss + internal:
                    w(f"| {scenario}: {kind} lookups, all rounds (information) | {hit:,} hits, {miss:,} misses"
                      f"{f', {internal:,} internal' if kind == 'geo' else ''}: cache hit ratio "
                      f"{100 * hit / max(1, hit + miss):.2f}% | — |")
    for scenario, goal in (("get_simple_tls", 0.85), ("get_close_tls", 1.0), ("get_close_tls_full", 1.0),
                           ("get_simple_h2_tls", 0.85)):
        p, n = median(results, "plutos-gzip6-spool", scenario, "cpu_us_req"), median(results, "nginx", scenario, "cpu_us_req")
        if p and n:
            line(f"{scenario}: plutos (spool, gzip 6) CPU/req ≤ {goal}× nginx", f"{p:.2f} µs vs {n:.2f} µs (×{p / n:.2f})",
                 p <= goal * n)
    # HTTP/3 against plutos's own HTTPS/1.1 and HTTP/2, the same certificate.
    h3 = median(results, "plutos-gzip6-spool", "get_simple_h3_tls", "cpu_us_req")
    https = median(results, "plutos-gzip6-spool", "get_simple_tls", "cpu_us_req")
    h2 = median(results, "plutos-gzip6-spool", "get_simple_h2_tls", "cpu_us_req")
    if h3 and https:
        line("get_simple_h3_tls: CPU/req ≤ 1.5× plutos's HTTPS/1.1 (get_simple_tls)",
             f"{h3:.2f} µs vs {https:.2f} µs (×{h3 / https:.2f}" + (f"; HTTP/2 {h2:.2f} µs" if h2 else "") + ")",
             h3 <= 1.5 * https)
    for quic, tcp in (("get_close_h3_tls_full", "get_close_tls_full"), ("get_close_h3_tls", "get_close_tls")):
        q, t = (median(results, "plutos-gzip6-spool", s, "handshakes_per_cpu_s") for s in (quic, tcp))
        if q and t:
            w(f"| {quic}: handshakes per CPU-second against HTTPS's ({tcp}) (information) | {q:,.0f} vs {t:,.0f} "
              f"(×{q / t:.2f}) | — |")
    # Like for like: the same events as an NDJSON POST on HTTP/1.1.
    for scenario, ndjson_scenario in (("grpc_send_100", "post_ndjson"), ("otlp_export_100", "post_ndjson_otlp_events")):
        g = median(results, "plutos-gzip6-spool", scenario, "cpu_us_event")
        ndjson = median(results, "plutos-gzip6-spool", ndjson_scenario, "cpu_us_event")
        if g and ndjson:
            line(f"{scenario}: CPU/event ≤ 1.5× {ndjson_scenario}'s (the same events, NDJSON on HTTP/1.1)",
                 f"{g:.3f} µs vs {ndjson:.3f} µs (×{g / ndjson:.2f})", g <= 1.5 * ndjson)
    epoll = "plutos-gzip6-spool"
    for scenario in ("get_simple", "get_pixel"):
        u, f, e = (median(results, t, scenario, "cpu_us_req") for t in (URING, "floor", epoll))
        if u and f:
            line(f"{scenario}: {URING} CPU/req ≤ 0.85× the epoll floor", f"{u:.2f} µs vs {f:.2f} µs (×{u / f:.2f})",
                 u <= 0.85 * f)
        if u and e:
            line(f"{scenario}: {URING} CPU/req ≤ 0.85× {epoll}", f"{u:.2f} µs vs {e:.2f} µs (×{u / e:.2f})",
                 u <= 0.85 * e)
    u, n = median(results, URING, "get_close", "cpu_us_req"), median(results, "nginx", "get_close", "cpu_us_req")
    if u and n:
        line(f"get_close: {URING} CPU/req ≤ 0.9× nginx", f"{u:.2f} µs vs {n:.2f} µs (×{u / n:.2f})", u <= 0.9 * n)
    for target in (epoll, URING):
        ratio = paired(results, target, "nginx", "get_close", "cpu_us_req")
        if ratio:
            line(f"get_close: {target} CPU/req ≤ 1.0× nginx (median of the per-round ratios)", f"×{ratio:.2f}",
                 ratio <= 1.0)
    ratio = paired(results, epoll, "floor", "get_simple", "cpu_us_req")
    if ratio:
        line(f"get_simple: {epoll} CPU/req ≤ 1.20× the epoll floor (median of the per-round ratios)", f"×{ratio:.3f}",
             ratio <= 1.20)
    u, n = median(results, URING, "get_pipelined", "rps"), median(results, "nginx", "get_pipelined", "rps")
    if u and n:
        line(f"get_pipelined: {URING} req/s ≥ 12× nginx", f"{u:,.0f} vs {n:,.0f} (×{u / n:.1f})", u >= 12 * n)
    for scenario in ("post_json", "post_ndjson"):
        u, e = (median(results, t, scenario, "cpu_us_event") for t in (URING, epoll))
        if u and e:
            line(f"{scenario}: {URING} CPU/event ≤ 1.03× {epoll}", f"{u:.3f} µs vs {e:.3f} µs (×{u / e:.2f})",
                 u <= 1.03 * e)
    if idle and idle[0] is not None:
        line(f"RSS with {IDLE_CONNECTIONS:,} idle keep-alive connections ≤ 64 MiB",
             f"{idle[0]:.1f} MiB (peak {idle[1]:.1f} MiB)", idle[0] <= 64)
    if idle_uring:
        line(f"RSS with {IDLE_CONNECTIONS:,} idle keep-alive connections ≤ 64 MiB, io_uring loop",
             f"{idle_uring[0]:.1f} MiB (peak {idle_uring[1]:.1f} MiB)", idle_uring[0] <= 64)
    if idle and len(idle) == 4:
        w(f"| RSS with {IDLE_CONNECTIONS:,} idle HTTPS keep-alive connections (information) | {idle[2]:.1f} MiB "
          f"(peak {idle[3]:.1f} MiB) | — |")
    path.write_text("\n".join(out) + "\n")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
