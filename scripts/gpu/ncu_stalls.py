#!/usr/bin/env python3
"""Where a kernel's warps wait: a compact text summary of Nsight Compute exports.

    ncu ... --set full --import-source no -o REP BINARY ARGS          (on the GPU machine)
    ncu -i REP.ncu-rep --page source --print-source sass --csv > source.csv
    ncu -i REP.ncu-rep --page details > details.txt
    ncu -i REP.ncu-rep --page raw --csv > raw.csv
    python3 scripts/gpu/ncu_stalls.py [--source source.csv] [--details details.txt] [--raw raw.csv] [--top 25]

--source: per kernel (launches of one kernel summed, instructions matched by their offset in the
  function), the warp-stall samples per stall reason and the --top SASS instructions by samples,
  each with its non-zero reasons. The sample columns are "stall_<reason>" (all samples) and
  "stall_<reason> (Not Issued)"; older ncu versions name the total "... (All Cycles)", newer
  "... (All Samples)" (or "# Samples"); raw metric names (smsp__pcsamp_warps_issue_stalled_<reason>) are accepted too.
  ("selected" samples are warps issuing, not stalled.)
--details: per launch, one line of the key metrics (duration, occupancy, registers, shared memory,
  grid / block / cluster, DRAM and L2 throughput, warp cycles per issued instruction...) and per
  kernel the stall sentences of ncu's rules ("spends N cycles being stalled ...").
--raw: per kernel the mean duration over its launches and, when collected, the warp cycles per issued
  instruction by stall reason (smsp__average_warps_issue_stalled_*_per_issue_active.ratio).
"""
import argparse
import collections
import csv
import re


def num(text):
    """A number from an ncu cell ("1,234", "12.5", "-", ""), else None."""
    try:
        return float(str(text).replace(",", "").strip())
    except ValueError:
        return None


def short_name(name):
    """attn_chunk_kernel<128, 1>(hw::...ChunkArgs) -> attn_chunk_kernel<128, 1>; drops a leading 'void '."""
    name = name.strip()
    if name.startswith("void "):
        name = name[5:]
    depth = 0
    for i, ch in enumerate(name):  # cut at the first '(' outside template brackets
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0 and i > 0:
            return name[:i].strip()
    return name


def hex_address(text):
    """0x7fc48541d900 -> int, else None (some versions leave the address empty)."""
    try:
        return int(text, 16) if text.startswith("0x") else None
    except ValueError:
        return None


STALL_COL = re.compile(r"^(?:stall_|smsp__pcsamp_warps_issue_stalled_)(\w+?)(_not_issued)?( \(Not Issued\))?$")


def stall_reason(col):
    """('long_sb', not_issued) for a stall sample column, else None."""
    m = STALL_COL.match(col.strip())
    if not m:
        return None
    return m.group(1), bool(m.group(2) or m.group(3))


def find_col(header, *patterns):
    """Index of the first header cell matching one of the regexes (case-insensitive), else None."""
    for pat in patterns:
        for i, h in enumerate(header):
            if re.fullmatch(pat, h.strip(), re.IGNORECASE):
                return i
    return None


def read_source(path):
    """{kernel: {"launches": n, "rows": {offset: row}, "reasons": [...]}} from a source-page CSV.

    The page holds, per profiled launch, a "Kernel Name","<name>" row, a header row (its cells
    include "Address" and "Source"), then one row per SASS instruction.
    """
    kernels = collections.OrderedDict()
    cur = None
    hdr = None
    with open(path, newline="", errors="replace") as f:
        for row in csv.reader(f):
            if not row or not any(c.strip() for c in row):
                continue
            first = row[0].strip()
            if first.startswith("Kernel Name"):
                name = row[1] if len(row) > 1 and row[1].strip() else first.partition(":")[2]
                key = short_name(name) or "?"
                cur = kernels.setdefault(key, {"launches": 0, "rows": collections.OrderedDict(), "reasons": []})
                cur["launches"] += 1
                cur["base"] = None
                hdr = None
                continue
            cells = [c.strip() for c in row]
            if "Source" in cells and ("Address" in cells or "# Address" in cells):
                hdr = {
                    "addr": find_col(cells, r"#? ?Address"),
                    "src": cells.index("Source"),
                    "all": find_col(cells, r"Warp Stall Sampling \(All( Samples| Cycles)?\)", r"# Samples"),
                    "noti": find_col(cells, r"Warp Stall Sampling \(Not[- ]issued( Samples| Cycles)?\)"),
                    "exec": find_col(cells, r"Instructions Executed"),
                    "stalls": [(i, stall_reason(c)) for i, c in enumerate(cells) if stall_reason(c)],
                }
                if cur is None:  # a page without kernel rows: one unnamed kernel
                    cur = kernels.setdefault("?", {"launches": 1, "rows": collections.OrderedDict(), "reasons": []})
                    cur["base"] = None
                for _, (reason, noti) in hdr["stalls"]:
                    if not noti and reason not in cur["reasons"]:
                        cur["reasons"].append(reason)
                continue
            if hdr is None or len(row) <= hdr["src"]:
                continue
            addr = hex_address(cells[hdr["addr"]]) if hdr["addr"] is not None else None
            if addr is not None and cur["base"] is None:
                cur["base"] = addr
            # The same instruction in every launch of the kernel: its offset from the function's start.
            off = int(addr - cur["base"]) if addr is not None else len(cur["rows"])
            r = cur["rows"].setdefault(off, {"src": cells[hdr["src"]], "all": 0.0, "noti": 0.0, "exec": 0.0,
                                             "stall": collections.Counter()})

            def val(i):
                return (num(cells[i]) or 0.0) if i is not None and i < len(cells) else 0.0

            r["all"] += val(hdr["all"])
            r["noti"] += val(hdr["noti"])
            r["exec"] += val(hdr["exec"])
            for i, (reason, noti) in hdr["stalls"]:
                if not noti:
                    r["stall"][reason] += val(i)
    return kernels


def print_source(path, top):
    kernels = read_source(path)
    if not kernels:
        print(f"{path}: no SASS rows found")
    for name, k in kernels.items():
        rows = k["rows"]
        # The total: the "All Samples" column, or the sum of the reasons where that column is absent.
        total = sum(r["all"] for r in rows.values()) or sum(sum(r["stall"].values()) for r in rows.values())
        per = collections.Counter()
        for r in rows.values():
            per.update(r["stall"])
        print(f"\n### {name}: {k['launches']} launch(es), {len(rows)} SASS instructions, {total:.0f} warp samples")
        if not total:
            continue
        print("  samples by reason: " + ", ".join(f"{reason} {v:.0f} ({100 * v / total:.1f}%)"
                                               for reason, v in per.most_common() if v > 0))
        print(f"  top {top} instructions (offset, samples, % of kernel, executed, reasons):")
        key = (lambda r: r["all"]) if any(r["all"] for r in rows.values()) else (lambda r: sum(r["stall"].values()))
        for off, r in sorted(rows.items(), key=lambda kv: -key(kv[1]))[:top]:
            s = key(r)
            if s <= 0:
                break
            reasons = " ".join(f"{reason}={v:.0f}" for reason, v in r["stall"].most_common() if v > 0)
            print(f"  {off:#07x} {s:7.0f} {100 * s / total:5.1f}% {r['exec']:9.0f}  {r['src'][:60]:60s} {reasons}")


# Metric names of the details page worth one line per launch (the first token of each line).
DETAIL_KEYS = [
    "Duration", "Elapsed Cycles", "SM Active Cycles", "SM Frequency", "Executed Ipc Active", "DRAM Throughput", "L2 Cache Throughput", "Memory Throughput",
    "Compute (SM) Throughput", "Achieved Occupancy", "Theoretical Occupancy", "Registers Per Thread",
    "Dynamic Shared Memory Per Block", "Static Shared Memory Per Block", "Block Size", "Grid Size", "Cluster Size",
    "Waves Per SM", "Warp Cycles Per Issued Instruction", "Issued Warp Per Scheduler", "No Eligible",
    "Active Warps Per Scheduler", "Eligible Warps Per Scheduler", "L1/TEX Hit Rate", "L2 Hit Rate",
]
METRIC_LINE = re.compile(r"^\s+(\S.*?)\s{2,}(?:(\S+)\s+)?(\S+)\s*$")  # name, unit (optional), value
STALL_SENTENCE = re.compile(r"spends ([\d.,]+) cycles being stalled (.{0,400}?)\. This stall type represents about "
                            r"([\d.,]+)% of the total average of ([\d.,]+) cycles")


def print_details(path):
    """One line of key metrics per launch; the rules' stall sentences once per kernel."""
    launches = []  # (header, {metric: "value unit"}, text)
    with open(path, errors="replace") as f:
        for line in f:
            # A launch starts with its kernel line: "  name (grid)x(block), Context 1, Stream 13, Device 0, CC 9.0".
            if re.match(r"^  \S.*, (Context|Device) \d+", line):
                launches.append([line.strip(), {}, []])
                continue
            if not launches:
                continue
            launches[-1][2].append(line.strip())
            m = METRIC_LINE.match(line)
            if m and m.group(1) in DETAIL_KEYS and m.group(1) not in launches[-1][1]:
                unit = m.group(2) or ""
                launches[-1][1][m.group(1)] = f"{m.group(3)} {unit}".strip()
    if not launches:
        print(f"{path}: no kernel launches found")
    seen = set()
    for head, metrics, text in launches:
        print(f"\n{head[:160]}")
        print("  " + " | ".join(f"{k} {metrics[k]}" for k in DETAIL_KEYS if k in metrics))
        name = short_name(head.split(" (")[0])
        if name in seen:
            continue
        seen.add(name)
        joined = re.sub(r"\s+", " ", " ".join(text))
        for cyc, why, pct, avg in STALL_SENTENCE.findall(joined):
            print(f"  stall: {cyc} of {avg} cycles between issues ({pct}%): stalled {why[:110]}")


def print_raw(path):
    """Per kernel: launches, mean duration, and mean warp cycles per issued instruction by reason."""
    with open(path, newline="", errors="replace") as f:
        rows = [r for r in csv.reader(f) if r]
    hdr_i = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if hdr_i is None:
        print(f"{path}: no 'Kernel Name' column")
        return
    hdr = rows[hdr_i]
    units = rows[hdr_i + 1] if hdr_i + 1 < len(rows) else []
    kn = hdr.index("Kernel Name")
    dur = hdr.index("gpu__time_duration.sum") if "gpu__time_duration.sum" in hdr else None
    scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}
    dur_scale = scale.get(units[dur] if dur is not None and dur < len(units) else "ns", 1e-3)
    # The busiest SM against the sum over SMs (profile_attention.sh stage 3), when collected.
    sm_names = ("sm__cycles_active.max", "sm__cycles_active.sum", "sm__ops_path_tensor_op_hmma_src_bf16_dst_fp32_sparsity_off.max",
                "sm__ops_path_tensor_op_hmma_src_bf16_dst_fp32_sparsity_off.sum")
    sm_cols = [(i, h) for i, h in enumerate(hdr) if h in sm_names]
    stall_cols = [(i, m.group(1)) for i, h in enumerate(hdr)
                  for m in [re.fullmatch(r"smsp__average_warps_issue_stalled_(\w+)_per_issue_active\.ratio", h)] if m]
    agg = collections.OrderedDict()
    for r in rows[hdr_i + 1:]:
        if len(r) != len(hdr) or not r[kn].strip():
            continue  # the units row, or a line of the program's own output
        a = agg.setdefault(short_name(r[kn]), {"n": 0, "us": [], "stall": collections.Counter(), "sm": collections.Counter()})
        a["n"] += 1
        if dur is not None and num(r[dur]) is not None:
            a["us"].append(num(r[dur]) * dur_scale)
        for i, reason in stall_cols:
            a["stall"][reason] += num(r[i]) or 0.0
        for i, name in sm_cols:
            a["sm"][name] += num(r[i]) or 0.0
    for name, a in agg.items():
        mean = sum(a["us"]) / len(a["us"]) if a["us"] else float("nan")
        spread = f" (min {min(a['us']):.2f}, max {max(a['us']):.2f})" if a["us"] else ""
        print(f"  {name}: {a['n']} launch(es), mean {mean:.2f} us{spread}")
        if a["stall"]:
            top = ", ".join(f"{reason} {v / a['n']:.1f}" for reason, v in a["stall"].most_common(8) if v > 0)
            print(f"    warp cycles per issued instruction by reason: {top}")
        if a["sm"]:
            print("    means: " + ", ".join(f"{name.replace('ops_path_tensor_op_hmma_src_bf16_dst_fp32_sparsity_off', 'hmma_ops')} {v / a['n']:.0f}"
                                      for name, v in a["sm"].items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", help="ncu --page source --print-source sass --csv output")
    ap.add_argument("--details", help="ncu --page details output (text)")
    ap.add_argument("--raw", help="ncu --page raw --csv output")
    ap.add_argument("--top", type=int, default=25, help="SASS instructions per kernel (default 25)")
    a = ap.parse_args()
    for path, show in ((a.raw, print_raw), (a.details, print_details), (a.source, lambda p: print_source(p, a.top))):
        if not path:
            continue
        try:
            show(path)
        except OSError as e:
            print(f"{path}: {e}")


if __name__ == "__main__":
    main()
