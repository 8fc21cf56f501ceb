"""Hogwild attention (CUDA) against single-sequence torch SDPA, measured in the same run.

Runs the bench_attention_cuda binary (16k context, combined layout, W = 1..16 decode tokens over
shared blocks) and times torch's flash SDPA for ONE sequence over the same number of keys with
the same shapes, then prints a markdown table of the ratios (target: W = 2, 4, 8 at most 1.2x).

The baseline is the faster of two ways of giving SDPA's flash backend the GQA decode problem:
  gqa:    q [1, heads, 1, d], k/v [1, kv_heads, n, d], enable_gqa=True
  folded: q [1, kv_heads, group, d] (a KV head's query heads as query rows, no mask), k/v as above
Both read every key once. 4 K/V sets are cycled so that L2 (60 MB on an H200) holds none.

Usage: python3 attention_cuda_compare.py BENCH_BINARY [OUT_MARKDOWN] [--variant A=1[,B=2]]...
Each --variant (and each space-separated setting of the environment variable ATTN_VARIANTS) runs the
binary once more with those switches set (e.g. HW_ATTN_STAGES=3), right after the default run, and adds
its rows to the table (column "variant"; "default" for the first run).
("vs W x SDPA": against running single-sequence attention once per worker, as the paper's kernel does.)
"""
import datetime
import os
import subprocess
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

CONTEXT = 16384
SHAPES = [("QwQ-32B", 40, 8, 128), ("Qwen3-8B", 32, 8, 128)]
SETS = 4


def median_us(fn, batch=20, reps=25):
    for _ in range(20):
        fn(0)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    per = []
    for _ in range(reps):
        start.record()
        for i in range(batch):
            fn(i)
        end.record()
        end.synchronize()
        per.append(start.elapsed_time(end) * 1000.0 / batch)
    per.sort()
    return per[len(per) // 2]


def sdpa_baseline(heads, kv_heads, d):
    g = torch.Generator(device="cuda").manual_seed(0)
    rnd = lambda *s: torch.rand(*s, device="cuda", dtype=torch.bfloat16, generator=g) * 2 - 1
    ks = [rnd(1, kv_heads, CONTEXT, d) for _ in range(SETS)]
    vs = [rnd(1, kv_heads, CONTEXT, d) for _ in range(SETS)]
    q = rnd(1, heads, 1, d)
    qf = q.view(1, kv_heads, heads // kv_heads, d)
    out = {}
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        try:
            out["gqa"] = median_us(lambda i: F.scaled_dot_product_attention(q, ks[i % SETS], vs[i % SETS], enable_gqa=True))
        except RuntimeError as e:
            print(f"sdpa gqa: {e}".splitlines()[0], file=sys.stderr)
        out["folded"] = median_us(lambda i: F.scaled_dot_product_attention(qf, ks[i % SETS], vs[i % SETS]))
    return out


def parse_args(argv):
    pos, variants = [], []
    i = 0
    while i < len(argv):
        if argv[i] == "--variant" and i + 1 < len(argv):
            variants.append(argv[i + 1])
            i += 2
        else:
            pos.append(argv[i])
            i += 1
    variants += os.environ.get("ATTN_VARIANTS", "").split()
    return pos, variants


def run_bench(binary, setting):
    env = dict(os.environ)
    if setting != "default":
        for kv in setting.split(","):
            k, v = kv.split("=", 1)
            env[k] = v
    try:
        run = subprocess.run([binary, str(CONTEXT)], capture_output=True, text=True, env=env, timeout=150)
    except subprocess.TimeoutExpired as e:
        print(f"--- {setting}: timed out after 150 s")
        return e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    print(f"--- {setting} (rc {run.returncode})")
    print(run.stdout, end="")
    if run.returncode != 0:
        print(run.stderr[-2000:], end="", file=sys.stderr)
    return run.stdout


def main():
    (binary, *rest), variants = parse_args(sys.argv[1:])
    md_path = rest[0] if rest else None
    dev = torch.cuda.get_device_name(0)
    base = {name: sdpa_baseline(h, kv, d) for name, h, kv, d in SHAPES}
    outs = [(setting, run_bench(binary, setting)) for setting in ["default"] + variants]
    # Baseline again after the kernel runs: the table uses the faster of before and after.
    again = {name: sdpa_baseline(h, kv, d) for name, h, kv, d in SHAPES}
    rows = []
    for setting, stdout in outs:
        for line in stdout.splitlines():
            if not line.startswith("RESULT "):
                continue
            f = dict(kv.split("=", 1) for kv in line.split()[1:])
            name, W = f["model"], int(f["W"])
            b = min(min(base[name].values()), min(again[name].values()))
            rows.append((setting, name, W, float(f["us"]), float(f["us_shares"]), b, float(f["kv_GBps"])))
    today = datetime.date.today().isoformat()
    lines = [
        f"GPU: {dev}; date: {today}; torch {torch.__version__}; context {CONTEXT}, combined layout, one decode token per worker.",
        "",
        "| variant | shape | W | Hogwild attention (us) | with shares (us) | SDPA flash, 1 sequence (us) | ratio | vs W x SDPA | KV read at |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for setting, name, W, us, us_sh, b, gbps in rows:
        lines.append(f"| {setting} | {name} | {W} | {us:.1f} | {us_sh:.1f} | {b:.1f} | {us / b:.2f}x | {us / (W * b):.2f}x | {gbps:.0f} GB/s |")
    lines.append("")
    for name, *_ in SHAPES:
        lines.append(f"SDPA variants for {name} (us, before / after): " +
                     ", ".join(f"{k} {base[name][k]:.1f} / {again[name].get(k, float('nan')):.1f}" for k in base[name]))
    text = "\n".join(lines)
    print(text)
    if md_path:
        with open(md_path, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
