#!/usr/bin/env python3
"""Per-kernel time of one decode step from an ncu CSV (one row per launch).

    ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv --page raw \\
        native/build-gpu/bench_cuda --shapes SHAPE --workers 4 --contexts 1024 --prefill 0 --warmup 1 --steps 1 > prof.csv
    python3 scripts/gpu/kernel_times.py prof.csv [more.csv]

bench_cuda runs --warmup untimed steps and --steps timed ones; the last step's launches are the ones
after the last launch of the step's first kernel (the embedding). Weight and K/V fills are before.
Prints, for that step, each kernel's launches, total and mean time, and the step's kernel total.
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
        rows.append((r.get("Kernel Name", "?"), t))
    unit = "ns"
    if lines:
        rd = list(csv.reader(lines[:2]))
        if len(rd) > 1:
            hdr, units = rd[0], rd[1]
            if "gpu__time_duration.sum" in hdr:
                unit = units[hdr.index("gpu__time_duration.sum")] or "ns"
    scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}.get(unit, 1e-3)
    return [(n, t * scale) for n, t in rows]


for path in sys.argv[1:]:
    try:
        rows = load(path)
    except OSError as e:
        print(f"{path}: {e}")
        continue
    firsts = [i for i, (n, _) in enumerate(rows) if "embed" in n]
    if not firsts:
        print(f"{path}: no embedding launch found ({len(rows)} launches)")
        continue
    step = rows[firsts[-1]:]
    agg = collections.OrderedDict()
    for n, t in step:
        short = n.split("(")[0][:80]
        c, s = agg.get(short, (0, 0.0))
        agg[short] = (c + 1, s + t)
    total = sum(s for _, s in agg.values())
    print(f"{path}: last decode step, {len(step)} launches, {total:.1f} us of kernel time")
    for n, (c, s) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"  {s:9.1f} us  {100 * s / total:5.1f}%  {c:4d} x {s / c:8.2f} us  {n}")
