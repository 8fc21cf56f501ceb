#!/usr/bin/env python3
"""A kernel's SASS cut into runs of equal execution count, with their warp-stall samples.

    ncu -i REP.ncu-rep --page source --print-source sass --csv > source.csv
    python3 scripts/gpu/ncu_segments.py source.csv [--kernel attn_chunk] [--min-share 0.5]

Straight-line code executed the same number of times forms one run, so the runs show a kernel's
phases in program order (prologue, copy issue, unrolled loop bodies, a one-warp tail, paths never
taken) without naming offsets by hand. Per run: offsets, executions (warp-level, summed over the
page's launches: ncu's source page may list a launch twice), SASS instructions, samples and their
share of the kernel, the most frequent opcodes and stall reasons. Runs never executed and without
samples are folded into one line each. Samples are proportional to SM time in a run where all of a
CTA's warps are in it (the sampler takes one warp per SM every 2^(5 + interval) cycles).
Written for attention-cuda-notes.md's profile of 2026-12-03 12:11 UTC.
"""
import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ncu_stalls import read_source  # noqa: E402


def opcode(src):
    words = src.split()
    if not words:
        return "?"
    op = words[1] if words[0].startswith("@") and len(words) > 1 else words[0]
    return op.split(".")[0]


def runs(rows):
    """Consecutive instructions with the same execution count, in offset order."""
    out = []
    for off, r in sorted(rows.items()):
        if not out or out[-1]["exec"] != r["exec"]:
            out.append({"first": off, "last": off, "exec": r["exec"], "n": 0, "samples": 0.0,
                        "ops": collections.Counter(), "stall": collections.Counter()})
        run = out[-1]
        run["last"] = off
        run["n"] += 1
        run["samples"] += r["all"]
        run["ops"][opcode(r["src"])] += 1
        run["stall"].update(r["stall"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="ncu --page source --print-source sass --csv output")
    ap.add_argument("--kernel", default="", help="only kernels whose name contains this")
    ap.add_argument("--min-share", type=float, default=0.0, help="fold executed runs below this %% of samples")
    a = ap.parse_args()
    for name, k in read_source(a.source).items():
        if a.kernel not in name:
            continue
        total = sum(r["all"] for r in k["rows"].values()) or 1.0
        executed = sum(1 for r in k["rows"].values() if r["exec"] > 0)
        print(f"### {name}: {len(k['rows'])} SASS instructions ({executed} executed), {total:.0f} samples, "
              f"{k['launches']} launch blocks on the page")
        for run in runs(k["rows"]):
            share = run["samples"] / total * 100
            if run["exec"] == 0 and run["samples"] == 0:
                print(f"  {run['first']:06x}-{run['last']:06x} {'never':>8} {run['n']:5d} SASS")
                continue
            if run["exec"] > 0 and share < a.min_share:
                continue
            ops = " ".join(f"{op}{n}" for op, n in run["ops"].most_common(6))
            why = " ".join(f"{s}={v / run['samples'] * 100:.0f}%" for s, v in run["stall"].most_common(4)
                           if v > 0) if run["samples"] else ""
            print(f"  {run['first']:06x}-{run['last']:06x} {run['exec']:8.0f} {run['n']:5d} SASS "
                  f"{run['samples']:6.0f} smp {share:5.1f}% | {ops} | {why}")


if __name__ == "__main__":
    main()
