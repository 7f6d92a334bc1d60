"""Turns the benchmark harness's Markdown results into PNG charts (matplotlib, installed by `scripts/bench.sh --plot`).

  bench/plot.py cpu     RESULTS.md OUT.png   CPU µs per request, by scenario and target (plutos, nginx, floors)
  bench/plot.py udp     RESULTS.md OUT.png   UDP ingest: stored events/s and loss against the offered rate
  bench/plot.py upload  RESULTS.md OUT.png   shipping to S3: MB/s and CPU per GB by UPLOAD_CONCURRENCY, per codec

Each reads the tables the harness writes (`| target | … |` under `## scenario: …`); a value it cannot find is an
error, not a gap in the chart.
"""

import re
import sys
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def tables(text):
    """[(section title, header cells, rows of cells)] for every Markdown table, under the nearest `##` title."""
    found, title, lines = [], "", text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            title = line[3:].strip()
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-:| ]+\|$", lines[i + 1]):
            header = [c.strip() for c in line.strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip("|").split("|")])
                i += 1
            found.append((title, header, rows))
            continue
        i += 1
    return found


def number(cell):
    return float(cell.replace(",", "").replace("%", "").replace("*", ""))


def cpu(results, out):
    scenarios = [(t.split(":")[0], h, r) for t, h, r in tables(results) if h and h[0] == "target" and "CPU µs/req" in h]
    if not scenarios:
        sys.exit("no scenario tables with CPU µs/req")
    targets = []
    for _, _, rows in scenarios:
        targets += [r[0] for r in rows if r[0] not in targets]
    width = 0.8 / len(targets)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(scenarios) + 2), 4.5))
    for k, target in enumerate(targets):
        xs, ys = [], []
        for n, (_, header, rows) in enumerate(scenarios):
            col = header.index("CPU µs/req")
            for row in rows:
                if row[0] == target:
                    xs.append(n + (k - (len(targets) - 1) / 2) * width)
                    ys.append(number(row[col]))
        ax.bar(xs, ys, width, label=target)
    ax.set_xticks(range(len(scenarios)), [s for s, _, _ in scenarios])
    ax.set_ylabel("server CPU µs per request (lower is better)")
    ax.set_yscale("log")
    ax.set_title(f"CPU per request — {Path(results_path).name}")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.text(0.01, 0.01, "nginx logs one line per request and the floors store nothing; plutos parses, compresses and "
             "spools every event (a batch scenario's request holds many)", fontsize=7, color="dimgrey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(out, dpi=110)


def udp(results, out):
    runs = [(t, h, r) for t, h, r in tables(results) if h and h[0] == "offered /s"]
    if not runs:
        sys.exit("no UDP tables")
    fig, (rate, loss) = plt.subplots(1, 2, figsize=(10, 4))
    for n, (title, header, rows) in enumerate(runs):
        rows = sorted((r for r in rows if r[0] != "max"), key=lambda r: number(r[header.index("sent /s")]))
        sent = [number(r[header.index("sent /s")]) for r in rows]
        stored = [number(r[header.index("stored /s")]) for r in rows]
        lost = [number(r[header.index("loss")]) for r in rows]
        rate.plot(sent, stored, marker="o", label=f"run {n + 1}")
        loss.plot(sent, lost, marker="o", label=f"run {n + 1}")
    top = max(rate.get_xlim()[1], rate.get_ylim()[1])
    rate.plot([0, top], [0, top], color="grey", linestyle=":", label="stored = sent")
    rate.set(xlabel="datagrams sent /s", ylabel="events stored /s", title="UDP: stored against sent")
    loss.set(xlabel="datagrams sent /s", ylabel="loss %", title="UDP: loss (kernel drops)")
    for ax in (rate, loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:.0f}k"))
    rate.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:.0f}k"))
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def upload(paths, out):
    fig, (mbps, cpu_gb) = plt.subplots(1, 2, figsize=(10, 4))
    for path in paths:
        found = [(h, r) for _, h, r in tables(Path(path).read_text()) if h and h[0] == "UPLOAD_CONCURRENCY"]
        if not found:
            sys.exit(f"{path}: no upload table")
        header, rows = found[0]
        label = Path(path).stem.split("upload-")[-1]
        concurrency = [r[0] for r in rows]
        mbps.plot(concurrency, [number(r[header.index("MB/s shipped")]) for r in rows], marker="o", label=label)
        cpu_gb.plot(concurrency, [number(r[header.index("plutos CPU s per GB shipped")]) for r in rows], marker="o",
                    label=label)
    mbps.set(xlabel="UPLOAD_CONCURRENCY", ylabel="MB/s shipped", title="Shipping to S3 (s3s-fs, loopback)")
    cpu_gb.set(xlabel="UPLOAD_CONCURRENCY", ylabel="plutos CPU s per GB", title="Uploader CPU per GB shipped")
    for ax in (mbps, cpu_gb):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in ("cpu", "udp", "upload"):
        sys.exit(__doc__)
    kind, *inputs, out = sys.argv[1:]
    results_path = inputs[0]
    if kind == "cpu":
        cpu(Path(results_path).read_text(), out)
    elif kind == "udp":
        udp(Path(results_path).read_text(), out)
    else:
        upload(inputs, out)
    print(out)
