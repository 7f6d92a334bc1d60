#!/usr/bin/env python3
"""The UDP benchmark (scripts/bench.sh --udp): plutos with one worker pinned to the server CPU takes 200-byte JSON
datagrams from examples/udp_send (pinned to the load CPU) at a rising rate. For each offered rate it reports what
was sent, stored and dropped — the drops both as plutos counted them (SO_RXQ_OVFL) and as the kernel's own counter
says (/proc/net/udp) — and plutos's CPU per event; then the rate at which drops begin and the events per second
one core stores. Writes bench/results/<date>-udp.md.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "plutos"
SENDER = ROOT / "target" / "release" / "examples" / "udp_send"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def metrics(port):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        text = b"".join(iter(lambda: s.recv(65536), b"")).decode()
    found = dict(re.findall(r'plutos_udp_datagrams_total\{result="(\w+)"\} (\d+)', text))
    drops = int(re.search(r"plutos_udp_kernel_drops_total (\d+)", text).group(1))
    return {k: int(v) for k, v in found.items()}, drops


def kernel_drops(port):
    """The drops column of /proc/net/udp for 127.0.0.1:port."""
    local = f"0100007F:{port:04X}"
    total = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[1] == local:
            total += int(cols[12])
    return total


def wait_port(port, proc):
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError("plutos exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("plutos did not listen")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="50000,100000,200000,300000,400000,600000,0",
                        help="datagrams per second, 0: as fast as the sender can")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--port", type=int, default=8180)
    parser.add_argument("--rcvbuf", default=None, help="UDP_RCVBUF (default: the kernel's)")
    parser.add_argument("--codec", default="gzip6", choices=["gzip6", "gzip1", "zstd3"])
    parser.add_argument("--results", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="plutos-udp-") as work:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": f"127.0.0.1:{args.port}",
               "UDP_PORT": f"127.0.0.1:{args.port + 1}", "WORKERS": "1", "SPOOL_DIR": f"{work}/spool",
               "OUT_DIR": f"{work}/out", "DRAIN_SECONDS": "0", "LOG_LEVEL": "warn",
               "COMPRESSION_TYPE": args.codec[:-1], "COMPRESSION_LEVEL": args.codec[-1]}
        if args.rcvbuf:
            env["UDP_RCVBUF"] = args.rcvbuf
        proc = subprocess.Popen(["taskset", "-c", args.server_cpu, str(BIN)], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(f"{work}/stderr", "w"))
        try:
            wait_port(args.port, proc)
            for rate in [int(r) for r in args.rates.split(",")]:
                counts0, drops0 = metrics(args.port)
                kernel0, cpu0 = kernel_drops(args.port + 1), cpu_ticks(proc.pid)
                out = subprocess.run(["taskset", "-c", args.load_cpu, str(SENDER), f"127.0.0.1:{args.port + 1}",
                                      str(rate), str(args.seconds)], capture_output=True, text=True, check=True).stdout
                sent, seconds = int(out.split()[1]), float(out.split()[3])
                # Everything queued is read within a few loop iterations; one more datagram carries the
                # kernel's final count to plutos.
                time.sleep(0.5)
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(b'{"marker":1}', ("127.0.0.1", args.port + 1))
                time.sleep(0.2)
                counts1, drops1 = metrics(args.port)
                kernel1, cpu1 = kernel_drops(args.port + 1), cpu_ticks(proc.pid)
                stored = counts1["stored"] - counts0["stored"] - 1
                cpu_s = (cpu1 - cpu0) / CLK_TCK
                rows.append({"rate": rate, "sent": sent, "seconds": seconds, "stored": stored,
                             "drops": drops1 - drops0, "kernel": kernel1 - kernel0, "cpu_s": cpu_s})
                r = rows[-1]
                print(f"offered {rate or 'max':>7} sent {sent:>9} ({sent / seconds:>9.0f}/s) stored {stored:>9} "
                      f"dropped {r['drops']:>8} (kernel {r['kernel']:>8}) cpu {cpu_s:5.2f} s", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
    write(args, rows)


def write(args, rows):
    now = datetime.now(timezone.utc)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    path = Path(args.results) if args.results else ROOT / "bench" / "results" / f"{now:%Y-%m-%d}-udp.md"
    w = []
    w.append(f"# plutos UDP ingest, {now:%Y-%m-%d %H:%M} UTC\n")
    w.append(f"- command: `scripts/bench.sh --udp {' '.join(os.sys.argv[1:])}`")
    w.append(f"- commit `{commit}`; CPU {cpu_model}; kernel {os.uname().release}; plutos `WORKERS=1` {args.codec} spool on "
             f"CPU {args.server_cpu}, `examples/udp_send` (200-byte JSON datagrams, 32 per sendmmsg) on CPU {args.load_cpu}; "
             f"{args.seconds} s per rate; UDP_RCVBUF {args.rcvbuf or 'the kernel default'}")
    w.append("- dropped: plutos's `plutos_udp_kernel_drops_total` (SO_RXQ_OVFL); kernel: the drops column of "
             "/proc/net/udp over the same interval. CPU: plutos's utime + stime\n")
    w.append("| offered /s | sent /s | stored /s | dropped | kernel's drop counter | loss | plutos CPU | µs/event | events/s per core |")
    w.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    first_drop = None
    for r in rows:
        loss = r["drops"] / r["sent"] if r["sent"] else 0
        per_event = r["cpu_s"] * 1e6 / r["stored"] if r["stored"] else 0
        per_core = r["stored"] / r["cpu_s"] if r["cpu_s"] else 0
        if first_drop is None and loss > 0.001:
            first_drop = r
        w.append(f"| {r['rate'] or 'max'} | {r['sent'] / r['seconds']:,.0f} | {r['stored'] / r['seconds']:,.0f} | "
                 f"{r['drops']:,} | {r['kernel']:,} | {100 * loss:.2f}% | {100 * r['cpu_s'] / r['seconds']:.0f}% | "
                 f"{per_event:.2f} | {per_core:,.0f} |")
    w.append("")
    if first_drop:
        w.append(f"Drops begin (over 0.1% lost) at {first_drop['sent'] / first_drop['seconds']:,.0f} datagrams/s sent.")
    else:
        w.append("No rate lost more than 0.1%.")
    path.write_text("\n".join(w) + "\n")
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
