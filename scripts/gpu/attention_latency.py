#!/usr/bin/env python3
"""Hogwild attention latency against context: fixed cost (intercept) and per-key cost (slope).

    bench_attention_cuda --contexts 1024,2048,4096,16384 --shapes ... --workers 1,4 | sed 's/^/default /' > lat.txt
    HW_ATTN_SHORT=1 bench_attention_cuda ... | sed 's/^/short8 /' >> lat.txt
    python3 scripts/gpu/attention_latency.py lat.txt [--sdpa]

Reads "<variant> RESULT model=.. W=.. context=.. us=.. launch=.." lines (one layer's attention, median
of back-to-back launches) and prints, per shape and W, a row per variant with the time at each
context and the kernel that ran (c<N>: chunk kernel over N chunks, + the merge kernel when N > 1;
s<N>: the short kernel, clusters of N CTAs), then a least-squares line through the contexts where
the variant's kernel ran: intercept (us at 0 keys), slope (us per 1k keys) and the K/V read rate
the slope implies. --sdpa times torch's flash SDPA for one sequence at the same contexts (the
faster of its two GQA forms, attention_cuda_compare.py's baseline) and fits it the same way.
"""
import argparse
import collections
import importlib.util
import os
import sys

# K/V heads and head_dim of the bench's shapes (for the bytes per key), and their query heads.
SHAPES = {"QwQ-32B": (40, 8, 128), "Qwen3-8B": (32, 8, 128), "Qwen2.5-0.5B": (14, 2, 64), "Qwen2.5-7B": (28, 4, 128)}


def kind(launch):
    """'s8' for 'short:_8-CTA_clusters...', 'c21' for '21x4x1_CTAs...'."""
    if launch.startswith("short:_"):
        return "s" + launch[len("short:_"):].split("-")[0]
    return "c" + launch.split("x")[0]


def fit(points):
    """Least-squares (intercept, slope) of [(x, y)], or None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - b * mx, b


def fit_text(points, shape):
    """'intercept 12.1 us, slope 1.90 us / 1k keys (1.1 TB/s)' over (context, us) points."""
    f = fit(points)
    if not f:
        return "no fit (one context)"
    a, b = f
    kv_heads, hd = SHAPES.get(shape, (0, 0, 0))[1:]
    rate = ""
    if kv_heads and b > 0:
        rate = f", {kv_heads * hd * 2 * 2 / (b * 1e-6) / 1e12:.2f} TB/s"
    return f"intercept {a:.1f} us, slope {b * 1000:.2f} us / 1k keys{rate} ({len(points)} points)"


def read(path):
    """{(shape, W): {variant: {context: (us, kind)}}} from prefixed RESULT lines."""
    table = collections.OrderedDict()
    with open(path, errors="replace") as f:
        for line in f:
            words = line.split()
            if "RESULT" not in words:
                continue
            at = words.index("RESULT")
            variant = " ".join(words[:at]) or "default"
            kv = dict(w.split("=", 1) for w in words[at + 1:] if "=" in w)
            try:
                key = (kv["model"], int(kv["W"]))
                table.setdefault(key, collections.OrderedDict()).setdefault(variant, {})[int(kv["context"])] = (
                    float(kv["us"]), kind(kv.get("launch", "")))
            except (KeyError, ValueError):
                print(f"skipped: {line.strip()}", file=sys.stderr)
    return table


def sdpa_times(shapes, contexts):
    """{shape: {context: us}} of torch flash SDPA over one sequence (attention_cuda_compare.sdpa_baseline)."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "native", "bench", "cuda", "attention_cuda_compare.py")
    spec = importlib.util.spec_from_file_location("attention_cuda_compare", path)
    cmp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cmp)
    out = {}
    for shape in shapes:
        heads, kv_heads, hd = SHAPES[shape]
        out[shape] = {}
        for c in contexts:
            cmp.CONTEXT = c  # sdpa_baseline reads the module's CONTEXT when called
            out[shape][c] = min(cmp.sdpa_baseline(heads, kv_heads, hd).values())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="file of '<variant> RESULT ...' lines")
    ap.add_argument("--sdpa", action="store_true", help="also time torch SDPA (one sequence) at the same contexts")
    a = ap.parse_args()
    table = read(a.results)
    if not table:
        print(f"{a.results}: no RESULT lines")
        return
    contexts = sorted({c for v in table.values() for cells in v.values() for c in cells})
    sdpa = {}
    if a.sdpa:
        try:
            sdpa = sdpa_times([s for s in dict.fromkeys(k[0] for k in table) if s in SHAPES], contexts)
        except Exception as e:  # torch missing or no GPU: the table without the baseline
            print(f"SDPA baseline skipped: {type(e).__name__}: {e}")
    head = "".join(f"{c:>13}" for c in contexts)
    print(f"one layer's attention, us (median of back-to-back launches); c<N>: chunk kernel, N chunks; s<N>: short kernel")
    print(f"{'shape':13} {'W':>2} {'variant':10}{head}   fit over the contexts where this variant's kernel ran")
    for (shape, W), variants in table.items():
        base_kinds = {c: k for c, (_, k) in variants.get("default", {}).items()}
        for variant, cells in variants.items():
            row = "".join(f"{cells[c][0]:8.1f} {cells[c][1]:>4}" if c in cells else f"{'':>13}" for c in contexts)
            # A switch that fell back to the default kernel at a context is the default's point again.
            own = [(c, us) for c, (us, k) in cells.items() if variant == "default" or k != base_kinds.get(c)]
            # A switch inside the same kernels never changes the launch kind: then every point is its own.
            if not own and cells and all(k == base_kinds.get(c) for c, (_, k) in cells.items()):
                own = [(c, us) for c, (us, _) in cells.items()]
            note = fit_text(own, shape) if len(own) > 1 else ""
            base = variants.get("default", {})
            if variant != "default" and own:  # the switch's own points against the default's
                note += ("; " if note else "") + "vs default: " + ", ".join(
                    f"{c}: {us - base[c][0]:+.1f} us" for c, us in own if c in base)
            print(f"{shape:13} {W:2d} {variant:10}{row}   {note or 'the default kernel at every context'}")
    for shape, by_ctx in sdpa.items():
        row = "".join(f"{by_ctx[c]:8.1f} {'':>4}" for c in contexts)
        print(f"{shape:13} {'1':>2} {'SDPA 1 seq':10}{row}   {fit_text(sorted(by_ctx.items()), shape)}")


if __name__ == "__main__":
    main()
