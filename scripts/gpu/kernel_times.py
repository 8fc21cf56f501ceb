#!/usr/bin/env python3
"""Per-kernel time of one decode step from an ncu CSV (one row per launch).

    ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum[,dram__bytes_read.sum] --csv --page raw \\
        native/build-gpu/bench_cuda --shapes SHAPE --workers 4 --contexts 1024 --prefill 0 --warmup 1 --steps 1 > prof.csv
    python3 scripts/gpu/kernel_times.py prof.csv [more.csv]

bench_cuda runs --warmup untimed steps and --steps timed ones; the last step's launches are the ones
after the last launch of the step's first kernel (the embedding). Weight and K/V fills are before.
Prints, for that step, each kernel's launches, total and mean time, and the step's kernel total;
with --seq N also the step's first N launches in order, each with its time (one layer's
sequence: which GEMM is which shows by its place).
"""
import collections
import csv
import sys


def number(v):
    """A CSV cell as a float (thousands separators dropped), None where it is not a number."""
    try:
        return float(v.replace(",", ""))
    except ValueError:
        return None


def load(path):
    with open(path, errors="replace") as f:
        lines = [l for l in f if l.startswith('"')]
    # The header and, below it, each metric's unit.
    head = list(csv.reader(lines[:2]))
    hdr, units = (head[0], head[1]) if len(head) > 1 else ([], [])

    def unit(metric, default):
        return (units[hdr.index(metric)] or default) if metric in hdr else default

    scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}.get(
        unit("gpu__time_duration.sum", "ns"), 1e-3)
    bscale = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9}.get(
        unit("dram__bytes_read.sum", "byte"), 1)
    rows = []
    for r in csv.DictReader(lines):
        t = number(r.get("gpu__time_duration.sum", ""))
        if t is None:
            continue  # the units row
        b = number(r.get("dram__bytes_read.sum", ""))
        rows.append((r.get("Kernel Name", "?"), t * scale, None if b is None else b * bscale))
    return rows

args = sys.argv[1:]
seq = 0
if len(args) >= 2 and args[0] == "--seq":
    seq = int(args[1])
    args = args[2:]
for path in args:
    try:
        rows = load(path)
    except OSError as e:
        print(f"{path}: {e}")
        continue
    firsts = [i for i, (n, *_) in enumerate(rows) if "embed" in n]
    if not firsts:
        print(f"{path}: no embedding launch found ({len(rows)} launches)")
        continue
    step = rows[firsts[-1]:]
    agg = collections.OrderedDict()
    for n, t, _ in step:
        short = n.split("(")[0][:80]
        c, s = agg.get(short, (0, 0.0))
        agg[short] = (c + 1, s + t)
    total = sum(s for _, s in agg.values())
    print(f"{path}: last decode step, {len(step)} launches, {total:.1f} us of kernel time")
    for n, (c, s) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"  {s:9.1f} us  {100 * s / total:5.1f}%  {c:4d} x {s / c:8.2f} us  {n}")
    for i, (n, t, b) in enumerate(step[:seq]):
        bw = f"{b / 1e6:8.2f} MB {b / t / 1e6:6.2f} TB/s" if b is not None and t > 0 else ""
        print(f"    #{i:3d} {t:9.2f} us {bw}  {n.split('(')[0][:100]}")
