#!/usr/bin/env bash
# Why Hogwild attention at 16k keys costs more with W = 4 and 8 workers than with 1-2 (issue 8's
# 1.2x-of-SDPA target), in one GPU-machine call (~4-5 min), from the repository root:
#   scripts/gpu/profile_attention_16k.sh OUTDIR [budget_s=300]
# 1. builds bench_attention_cuda (cmake + ninja, sm_90, native/build-gpu);
# 2. the op alone at 16k (QwQ-32B and Qwen3-8B, W = 1, 2, 4, 8), the default kernels and the
#    switches that change the per-tile or per-piece work (HW_ATTN_ROT_TOKEN=1, HW_ATTN_GROUPS=1,
#    HW_ATTN_STAGES=3, HW_ATTN_CHUNK_TILES=2), in interleaved rounds; the median per variant;
# 3. ncu --set full (warp-stall PC sampling per SASS instruction) of the chunk and merge kernels
#    at 16k, Qwen3-8B W = 4 and W = 8 and QwQ-32B W = 8, summed up by scripts/gpu/ncu_stalls.py and
#    ncu_segments.py.
# OUTDIR gets summary.txt and prof.tgz (logs and exports). Every stage runs under `timeout`.
set -u
OUTDIR=${1:?usage: scripts/gpu/profile_attention_16k.sh OUTDIR [budget_s]}
BUDGET=${2:-300}
[ -f native/CMakeLists.txt ] || { echo "run from the repository root"; exit 2; }
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
W=$(mktemp -d /tmp/prof-16k.XXXX)
S=$OUTDIR/summary.txt
: >"$S"
B=native/build-gpu
T0=$SECONDS
say() { echo "$*" | tee -a "$S"; }
left() { echo $((BUDGET - (SECONDS - T0))); }
cap() { local n=$(($(left) - 15)); [ "$n" -gt "$1" ] && n=$1; [ "$n" -lt 10 ] && n=10; echo "$n"; }
pack() {
  tar -czf "$OUTDIR/prof.tgz" -C "$W" --exclude='*.ncu-rep' . 2>/dev/null
  if [ "$(stat -c %s "$OUTDIR/prof.tgz")" -gt $((15 * 1024 * 1024)) ]; then
    tar -czf "$OUTDIR/prof.tgz" -C "$W" --exclude='*.ncu-rep' --exclude='*_source.csv' . 2>/dev/null
  fi
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader 2>&1 | tee -a "$S"
say "ncu: $(ncu --version 2>&1 | tail -1)"

say "== [$((SECONDS - T0)) s] build bench_attention_cuda"
cfg="-G Ninja -DCMAKE_BUILD_TYPE=Release -DHW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a"
timeout "$(cap 200)" bash -c "cmake -S native -B $B $cfg && cmake --build $B -j 16 --target bench_attention_cuda" >"$W/build.log" 2>&1
[ -x $B/bench_attention_cuda ] || { tail -30 "$W/build.log" | tee -a "$S"; pack; exit 1; }

say "== [$((SECONDS - T0)) s] the op alone at 16k, interleaved rounds"
L=$W/latency.txt
variants="default HW_ATTN_ROT_TOKEN=1 HW_ATTN_GROUPS=1 HW_ATTN_STAGES=3 HW_ATTN_CHUNK_TILES=2"
for r in 1 2 3; do
  for v in $variants; do
    [ "$(left)" -lt 150 ] && break 2
    e=""
    [ "$v" = default ] || e=$v
    env $e timeout "$(cap 30)" $B/bench_attention_cuda --contexts 16384 --shapes QwQ-32B,Qwen3-8B --workers 1,2,4,8 2>&1 |
      grep RESULT | sed "s/^/$v /" >>"$L"
  done
  say "   round $r done ($((SECONDS - T0)) s)"
done
python3 - "$L" <<'PY' | tee -a "$S"
import collections, re, statistics, sys
rows = collections.defaultdict(list)
launch = {}
for line in open(sys.argv[1]):
    v, rest = line.split(" ", 1)
    kv = dict(re.findall(r"(\w+)=(\S+)", rest))
    rows[(kv["model"], int(kv["W"]), v)].append(float(kv["us"]))
    launch[(kv["model"], int(kv["W"]), v)] = kv.get("launch", "")
names = []
for (_, _, v) in rows:
    if v not in names: names.append(v)
print("| shape | W | " + " | ".join(names) + " |")
print("|---|---:|" + "---:|" * len(names))
for m, w in sorted({k[:2] for k in rows}):
    base = statistics.median(rows[(m, w, "default")])
    cells = []
    for v in names:
        x = rows.get((m, w, v))
        cells.append(f"{statistics.median(x):.1f} ({statistics.median(x) / base:.2f})" if x else "")
    print(f"| {m} | {w} | " + " | ".join(cells) + " |")
for k, l in sorted(launch.items()):
    if k[2] == "default": print(k[0], k[1], l)
PY
pack

full() {  # tag shape W
  local tag=$1 shape=$2 w=$3
  [ "$(left)" -lt 50 ] && { say "== ncu $tag skipped: $(left) s left"; return; }
  say "== [$((SECONDS - T0)) s] ncu --set full: $tag"
  timeout -k 10 "$(cap 90)" ncu --clock-control none --cache-control none --set full --import-source no \
    --kernel-name regex:attn_ --launch-skip 20 --launch-count 2 -f -o "$W/$tag" \
    $B/bench_attention_cuda 16384 "$shape" "$w" >"$W/$tag.log" 2>&1
  say "   ncu rc $?: $(grep -c '==PROF== Profiling' "$W/$tag.log") launches"
  [ -f "$W/$tag.ncu-rep" ] || { tail -15 "$W/$tag.log" | tee -a "$S"; return; }
  timeout 40 ncu -i "$W/$tag.ncu-rep" --page details >"$W/${tag}_details.txt" 2>&1
  timeout 40 ncu -i "$W/$tag.ncu-rep" --page raw --csv >"$W/${tag}_raw.csv" 2>/dev/null
  timeout 60 ncu -i "$W/$tag.ncu-rep" --page source --print-source sass --csv >"$W/${tag}_source.csv" 2>/dev/null
  timeout 60 python3 scripts/gpu/ncu_stalls.py --raw "$W/${tag}_raw.csv" --details "$W/${tag}_details.txt" \
    --source "$W/${tag}_source.csv" --top 20 2>&1 | tee "$W/${tag}_stalls.txt" >>"$S"
  timeout 60 python3 scripts/gpu/ncu_segments.py "$W/${tag}_source.csv" --min-share 0.2 >"$W/${tag}_segments.txt" 2>&1
  pack
}
full q3_w4 Qwen3-8B 4
full q3_w8 Qwen3-8B 8
full qwq_w8 QwQ-32B 8
pack
say "done in $((SECONDS - T0)) s"
