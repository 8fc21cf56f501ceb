#!/usr/bin/env python3
"""CUDA benchmark: this engine against transformers + torch.compile on the GPU machine.

Run from the repository root after scripts/gpu/run_cuda_tests.sh built native/build-gpu:
    python3 scripts/gpu/bench_cuda.py [--build native/build-gpu] [--quick]
It measures, in one call: the device's copy bandwidth and bf16 matmul rate (torch); this
engine's decode step (random bf16 weights generated on the GPU; Qwen2.5-0.5B, Qwen2.5-7B,
Qwen3-8B, QwQ-32B shapes; W = 1, 2, 4, 8 at 1k and 16k context) and a 2k-token prefill
(native/bench/cuda/bench_cuda.cpp); transformers with a static cache and torch.compile at
batch = W on the target shapes. It prints one markdown table and writes it to
$OUT/RESULTS_cuda.md (copy it into bench/RESULTS.md).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--build", default="native/build-gpu")
p.add_argument("--quick", action="store_true", help="fewer shapes (smoke test)")
p.add_argument("--baseline", default="qwen2.5-0.5b:1,qwen2.5-0.5b:4,qwen2.5-7b:4",
               help="transformers runs as shape:W (each compiles once)")
args = p.parse_args()
out_dir = os.environ.get("OUT", "/tmp")
os.makedirs(out_dir, exist_ok=True)

SHAPES = {
    "qwen2.5-0.5b": dict(arch="qwen2", hidden=896, inter=4864, layers=24, heads=14, kv=2, hd=64, vocab=151936, tied=True),
    "qwen2.5-7b": dict(arch="qwen2", hidden=3584, inter=18944, layers=28, heads=28, kv=4, hd=128, vocab=152064, tied=False),
    "qwen3-8b": dict(arch="qwen3", hidden=4096, inter=12288, layers=36, heads=32, kv=8, hd=128, vocab=151936, tied=False),
    "qwq-32b": dict(arch="qwen2", hidden=5120, inter=27648, layers=64, heads=40, kv=8, hd=128, vocab=152064, tied=False),
}


def log(*a):
    print(*a, flush=True)


def timed(fn, reps):
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for s, e in ev:
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()
    ts = sorted(s.elapsed_time(e) for s, e in ev)
    return ts[len(ts) // 2]


# ---------------------------------------------------------------- device ceilings
gpu = torch.cuda.get_device_name(0)
n = 4 << 30
a = torch.empty(n, dtype=torch.uint8, device="cuda").random_(0, 255)
b = torch.empty_like(a)
for _ in range(3):
    b.copy_(a)
copy_ms = timed(lambda: b.copy_(a), 20)
copy_bw = 2 * n / (copy_ms * 1e-3)  # bytes read + written per second
del a, b
m = 8192
x = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
y = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    x @ y
mm_ms = timed(lambda: x @ y, 10)
mm_rate = 2 * m ** 3 / (mm_ms * 1e-3)
del x, y
torch.cuda.empty_cache()
log(f"{gpu}: copy {copy_bw / 1e12:.2f} TB/s (read + write), bf16 matmul {mm_rate / 1e12:.0f} TFLOP/s")

# ---------------------------------------------------------------- this engine
shapes = ["qwen2.5-0.5b", "qwen2.5-7b"] if args.quick else list(SHAPES)
cmd = [f"{args.build}/bench_cuda", "--shapes", ",".join(shapes)]
log("engine:", " ".join(cmd))
t0 = time.time()
proc = subprocess.run(cmd, capture_output=True, text=True)
sys.stderr.write(proc.stderr)
eng = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
log(f"engine bench: {len(eng)} measurements in {time.time() - t0:.0f} s, rc {proc.returncode}")
models = {e["shape"]: e for e in eng if e["kind"] == "model"}
decode = {(e["shape"], e["W"], e["ctx"]): e for e in eng if e["kind"] == "decode"}
prefill = {e["shape"]: e for e in eng if e["kind"] == "prefill"}

# ---------------------------------------------------------------- transformers baseline
base = {}


def transformers_step_ms(shape, W, ctx=1024):
    """Decode step of transformers with a static cache; generate() then compiles the forward
    with torch.compile itself (generation_config.compile_config, mode reduce-overhead)."""
    import transformers
    s = SHAPES[shape]
    common = dict(hidden_size=s["hidden"], intermediate_size=s["inter"], num_hidden_layers=s["layers"],
                  num_attention_heads=s["heads"], num_key_value_heads=s["kv"], vocab_size=s["vocab"],
                  max_position_embeddings=4096, tie_word_embeddings=s["tied"], rope_theta=1e6)
    if s["arch"] == "qwen3":
        cfg = transformers.Qwen3Config(head_dim=s["hd"], **common)
    else:
        cfg = transformers.Qwen2Config(**common)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()
    model.generation_config.cache_implementation = "static"
    model.generation_config.pad_token_id = 0
    ids = torch.randint(0, s["vocab"], (W, ctx - 48), device="cuda")

    def gen(k):
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.generate(ids, max_new_tokens=k, min_new_tokens=k, do_sample=False)
        torch.cuda.synchronize()
        return time.perf_counter() - t

    gen(40)  # compiles
    short = min(gen(8) for _ in range(2))
    long = min(gen(40) for _ in range(2))
    del model
    torch.cuda.empty_cache()
    return (long - short) / 32 * 1e3


# ---------------------------------------------------------------- table
def write_table():
    lines = []
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"GPU: {gpu}; {date}; command: `scripts/gpu/run_cuda_tests.sh && python3 scripts/gpu/bench_cuda.py`")
    lines.append(f"Copy bandwidth {copy_bw / 1e12:.2f} TB/s (read + write, torch); bf16 matmul {mm_rate / 1e12:.0f} TFLOP/s "
                 f"(8192^3, torch).")
    lines.append("")
    lines.append("| shape | weights | KV/token | ctx | W | step ms | tok/s | floor ms (weights/copy bw) | step/floor | transformers ms | speed-up |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for shape in shapes:
        if shape not in models:
            lines.append(f"| {shape} | engine failed: see the log | | | | | | | | | |")
            continue
        md = models[shape]
        floor = md["step_read_bytes"] / copy_bw * 1e3
        for ctx in (1024, 16384):
            for W in (1, 2, 4, 8):
                d = decode.get((shape, W, ctx))
                if not d:
                    continue
                bt = base.get((shape, W)) if ctx == 1024 else None
                sp = f"{bt / d['step_ms']:.2f}x" if bt else "-"
                lines.append(
                    f"| {shape} | {md['weight_bytes'] / 1e9:.2f} GB | {md['kv_bytes_per_token'] / 1e3:.1f} KB | {ctx} | {W} | "
                    f"{d['step_ms']:.2f} | {d['tok_s']:.0f} | {floor:.2f} | {d['step_ms'] / floor:.2f} | "
                    f"{f'{bt:.2f}' if bt else '-'} | {sp} |")
    lines.append("")
    for shape, pf in prefill.items():
        lines.append(f"Prefill {pf['tokens']} tokens, {shape}: {pf['ms']:.1f} ms, {pf['tflops']:.0f} TFLOP/s = "
                     f"{pf['tflops'] * 1e12 / mm_rate * 100:.0f}% of the measured bf16 matmul rate.")
    lines.append("")


    def ratio(k1, k2):
        a, b = decode.get(k1), decode.get(k2)
        return a["step_ms"] / b["step_ms"] if a and b else None


    tg = []
    d7 = decode.get(("qwen2.5-7b", 4, 1024))
    if d7 and "qwen2.5-7b" in models:
        fl = models["qwen2.5-7b"]["step_read_bytes"] / copy_bw * 1e3
        tg.append(f"- 7B W=4 1k: step {d7['step_ms']:.2f} ms = {d7['step_ms'] / fl:.2f}x the weight-read floor (target <= 1.25x)")
        if ("qwen2.5-7b", 4) in base:
            tg.append(f"- 7B W=4 1k: {base[('qwen2.5-7b', 4)] / d7['step_ms']:.2f}x transformers + torch.compile tok/s (target >= 2x)")
    d05 = decode.get(("qwen2.5-0.5b", 4, 1024))
    if d05 and ("qwen2.5-0.5b", 4) in base:
        tg.append(f"- 0.5B W=4 1k: {base[('qwen2.5-0.5b', 4)] / d05['step_ms']:.2f}x transformers + torch.compile tok/s (target >= 4x)")
    r = ratio(("qwen2.5-7b", 8, 1024), ("qwen2.5-7b", 1, 1024))
    if r:
        tg.append(f"- 7B W=8 / W=1 step at 1k: {r:.2f}x (target <= 1.15x)")
    if "qwen2.5-7b" in prefill:
        tg.append(f"- 2k prefill 7B: {prefill['qwen2.5-7b']['tflops'] * 1e12 / mm_rate * 100:.0f}% of the bf16 matmul rate (target >= 50%)")
    lines += ["Targets:"] + tg
    text = "\n".join(lines)
    print("\n" + text)
    with open(os.path.join(out_dir, "RESULTS_cuda.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out_dir, "bench_cuda.jsonl"), "w") as f:
        f.write(proc.stdout)


write_table()  # the engine's numbers are kept even if a baseline run fails or runs out of time
for item in [s for s in args.baseline.split(",") if s]:
    shape, w = item.split(":")
    t0 = time.time()
    try:
        base[(shape, int(w))] = transformers_step_ms(shape, int(w))
        log(f"transformers {shape} W={w}: {base[(shape, int(w))]:.2f} ms/step ({time.time() - t0:.0f} s)")
    except Exception as e:  # reported in the table, never hidden
        log(f"transformers {shape} W={w} failed: {type(e).__name__}: {e}")

write_table()
