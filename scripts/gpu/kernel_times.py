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


def load(path):
    rows = []
    with open(path, errors="replace") as f:
        lines = [l for l in f if l.startswith('"')]
    rd = csv.DictReader(lines)
    for r in rd:
        v = r.get("gpu__time_duration.sum", "")
        try:
            t = float(v.replace(",", ""))
        except ValueError:
            continue  # the units row
        b = r.get("dram__bytes_read.sum", "")
        try:
            b = float(b.replace(",", ""))
        except ValueError:
            b = None
        rows.append((r.get("Kernel Name", "?"), t, b))
    unit = "ns"
    if lines:
        rd = list(csv.reader(lines[:2]))
        if len(rd) > 1:
            hdr, units = rd[0], rd[1]
            if "gpu__time_duration.sum" in hdr:
                unit = units[hdr.index("gpu__time_duration.sum")] or "ns"
    scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}.get(unit, 1e-3)
    bunit = "byte"
    if lines:
        hdr_units = list(csv.reader(lines[:2]))
        if len(hdr_units) > 1 and "dram__bytes_read.sum" in hdr_units[0]:
            bunit = hdr_units[1][hdr_units[0].index("dram__bytes_read.sum")] or "byte"
    bscale = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9}.get(bunit, 1)
    return [(n, t * scale, None if b is None else b * bscale) for n, t, b in rows]


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
