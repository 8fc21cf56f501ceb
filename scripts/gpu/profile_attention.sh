#!/usr/bin/env bash
# Where one layer's fixed ~15-20 us of CUDA Hogwild attention go, in one GPU-machine call (~4-5 min):
#   scripts/gpu/profile_attention.sh OUTDIR [budget_s=280]        (from the repository root)
# 1. builds bench_attention_cuda and bench_cuda (cmake + ninja, sm_90, native/build-gpu);
# 2. the attention op alone (bench_attention_cuda) at 1k, 2k, 4k and 16k keys, W = 1 and 4, shapes
#    QwQ-32B, Qwen3-8B, Qwen2.5-7B, Qwen2.5-0.5B: the default kernels, and the short kernel at 1k and
#    2k (HW_ATTN_SHORT=1: clusters of 8 CTAs, =16: of 16; where it does not fit, the default runs),
#    the chunk kernel with HW_ATTN_ROT_TOKEN=1 ("rot": one sincosf per token and pair) and with
#    HW_ATTN_SMALL_TAIL=0 ("oldtail": warp 0 merges the 4 warps' partials unrolled, the tail before
#    the small one became the default) at 1k and 2k,
#    torch SDPA over one sequence at the same contexts; per row the intercept (fixed cost) and the
#    slope (cost per key) (scripts/gpu/attention_latency.py);
# 3. the same op's kernel-only durations (ncu, gpu__time_duration only) at 1k, Qwen2.5-7B W = 4,
#    default and short: what the event-timed latency holds beyond the kernels' own time;
# 4. ncu --set full (warp-stall PC sampling per SASS instruction) of the attn_ kernels of a decode
#    step in bench_cuda (qwen2.5-7b W = 4 at 1k, then qwen2.5-0.5b as time allows), default and
#    HW_ATTN_SHORT=1: 3 launches of each kernel, exported (details, raw, SASS source pages) and
#    summed up by scripts/gpu/ncu_stalls.py.
# OUTDIR gets summary.txt (tables, stall summaries, seconds per stage), prof.tgz (logs and exports)
# and reps.tgz (the .ncu-rep reports, when under 15 MiB). Every stage runs under `timeout`; a stage
# starts only if the budget leaves it room, so a slow one cannot take the rest of the call.
# ncu replays each profiled kernel alone (no PDL overlap with the kernel before it, L2 warm from the
# previous pass: --cache-control none), so its durations are the kernels' own, not a step's.
set -u
OUTDIR=${1:?usage: scripts/gpu/profile_attention.sh OUTDIR [budget_s]}
BUDGET=${2:-280}
[ -f native/CMakeLists.txt ] || { echo "run from the repository root"; exit 2; }
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
W=$(mktemp -d /tmp/prof-attn.XXXX)  # logs, reports and exports; only the archives go to OUTDIR
S=$OUTDIR/summary.txt
: >"$S"
B=native/build-gpu
T0=$SECONDS
ST=$SECONDS
export PYTHONUNBUFFERED=1
say() { echo "$*" | tee -a "$S"; }
left() { echo $((BUDGET - (SECONDS - T0))); }
begin() { ST=$SECONDS; say ""; say "== [$((SECONDS - T0)) s] $*"; }
end() { say "   ($((SECONDS - ST)) s; $((SECONDS - T0)) s in all)"; pack; }
pack() {  # the logs and exports so far (again after each stage: a cut-off call keeps what ran)
  tar -czf "$OUTDIR/prof.tgz" -C "$W" --exclude='*.ncu-rep' . 2>/dev/null
  if [ "$(stat -c %s "$OUTDIR/prof.tgz")" -gt $((15 * 1024 * 1024)) ]; then  # 16 MiB come back at most
    tar -czf "$OUTDIR/prof.tgz" -C "$W" --exclude='*.ncu-rep' --exclude='*_source.csv' . 2>/dev/null
  fi
}
cap() { local n=$(($(left) - 15)); [ "$n" -gt "$1" ] && n=$1; [ "$n" -lt 10 ] && n=10; echo "$n"; }

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader 2>&1 | tee -a "$S"
say "ncu: $(ncu --version 2>&1 | tail -1); nvcc: $(nvcc --version 2>&1 | tail -1); commit $(git rev-parse --short HEAD 2>/dev/null)"

# 1. Build only the two benchmarks.
begin "build bench_attention_cuda bench_cuda ($B)"
cfg="-G Ninja -DCMAKE_BUILD_TYPE=Release -DHW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a"
timeout "$(cap 200)" bash -c "cmake -S native -B $B $cfg && cmake --build $B -j 16 --target bench_attention_cuda bench_cuda" \
  >"$W/build.log" 2>&1
rc=$?
say "   build rc $rc"
if [ $rc -ne 0 ] || [ ! -x $B/bench_attention_cuda ] || [ ! -x $B/bench_cuda ]; then
  tail -30 "$W/build.log" | tee -a "$S"
  end
  exit 1
fi
end

# 2. Latency against context, the op alone (each RESULT line prefixed by its variant).
begin "attention latency against context (bench_attention_cuda)"
L=$W/latency_results.txt
shapes=QwQ-32B,Qwen3-8B,Qwen2.5-7B,Qwen2.5-0.5B
timeout "$(cap 90)" $B/bench_attention_cuda --contexts 1024,2048,4096,16384 --shapes $shapes --workers 1,4 2>&1 |
  sed 's/^/default /' >>"$L"
say "   default rc ${PIPESTATUS[0]}"
for n in 1 16; do
  HW_ATTN_SHORT=$n timeout "$(cap 45)" $B/bench_attention_cuda --contexts 1024,2048 --shapes $shapes --workers 1,4 2>&1 |
    sed "s/^/short=$n /" >>"$L"
  say "   HW_ATTN_SHORT=$n rc ${PIPESTATUS[0]}"
done
# The rotation per (token, pair); the old tail (attention.cu; same launch kind as the default, so
# the table compares every context).
for v in HW_ATTN_ROT_TOKEN=1 HW_ATTN_SMALL_TAIL=0; do
  case $v in
    HW_ATTN_ROT_TOKEN=1) name=rot ;; *) name=oldtail ;;
  esac
  [ "$(left)" -lt 120 ] && { say "   $v skipped: $(left) s left"; continue; }
  env $v timeout "$(cap 25)" $B/bench_attention_cuda --contexts 1024,2048 \
    --shapes $shapes --workers 1,4 2>&1 | sed "s/^/$name /" >>"$L"
  say "   $v rc ${PIPESTATUS[0]}"
done
grep -v RESULT "$L" | grep -v "device:" | head -5 | tee -a "$S"  # errors and switch messages, if any
timeout "$(cap 60)" python3 scripts/gpu/attention_latency.py "$L" --sdpa 2>&1 | tee -a "$S"
end

# 3. Kernel-only durations of the op at 1k (Qwen2.5-7B, W = 4): 20 runs after 20 warm-up runs.
sm_metrics=sm__cycles_active.max,sm__cycles_active.sum,sm__ops_path_tensor_op_hmma_src_bf16_dst_fp32_sparsity_off.max,sm__ops_path_tensor_op_hmma_src_bf16_dst_fp32_sparsity_off.sum
begin "kernel-only durations at 1k, Qwen2.5-7B W=4 (ncu, gpu__time_duration)"
# With the busiest SM's active cycles and tensor work (HMMA ops of how many CTAs) against the sums.
for v in default HW_ATTN_SHORT=1 HW_ATTN_ROT_TOKEN=1; do
  e=""
  [ $v = default ] || e=$v
  tag=durations_${v//=/}
  env $e timeout -k 5 "$(cap 45)" ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum,$sm_metrics \
    --csv --page raw --log-file "$W/$tag.csv" --kernel-name regex:attn_ --launch-skip 40 --launch-count 40 \
    $B/bench_attention_cuda --contexts 1024 --shapes Qwen2.5-7B --workers 4 >"$W/$tag.out" 2>&1
  say "   $v: ncu rc $? (event-timed under ncu: $(grep -o 'us=[0-9.]*' "$W/$tag.out" | head -1))"
  python3 scripts/gpu/ncu_stalls.py --raw "$W/$tag.csv" 2>&1 | tee -a "$S"
done
end

# 4. ncu --set full of decode steps (3 launches of each attention kernel of the first step).
full() {  # tag shape env launches
  local tag=$1 shape=$2 e=$3 count=$4
  if [ "$(left)" -lt 60 ]; then
    say ""
    say "== ncu --set full $tag skipped: $(left) s left"
    return
  fi
  begin "ncu --set full: $tag (bench_cuda --shapes $shape --workers 4 --contexts 1024, ${e:-default kernels})"
  env $e timeout -k 10 "$(cap 150)" ncu --clock-control none --cache-control none --set full --import-source no \
    --kernel-name regex:attn_ --launch-skip 8 --launch-count "$count" -f -o "$W/$tag" \
    $B/bench_cuda --shapes "$shape" --workers 4 --contexts 1024 --prefill 0 --warmup 1 --steps 1 >"$W/$tag.log" 2>&1
  say "   ncu rc $?: $(grep -c '==PROF== Profiling' "$W/$tag.log") launches profiled"
  if [ -f "$W/$tag.ncu-rep" ]; then
    timeout 40 ncu -i "$W/$tag.ncu-rep" --page details >"$W/${tag}_details.txt" 2>&1
    timeout 40 ncu -i "$W/$tag.ncu-rep" --page raw --csv >"$W/${tag}_raw.csv" 2>>"$W/${tag}_export.err"
    timeout 60 ncu -i "$W/$tag.ncu-rep" --page source --print-source sass --csv >"$W/${tag}_source.csv" \
      2>>"$W/${tag}_export.err"
    timeout 60 python3 scripts/gpu/ncu_stalls.py --raw "$W/${tag}_raw.csv" --details "$W/${tag}_details.txt" \
      --source "$W/${tag}_source.csv" --top 25 2>&1 | tee "$W/${tag}_stalls.txt" >>"$S"
    say "   (stall summary: $(wc -l <"$W/${tag}_stalls.txt") lines above)"
    timeout 60 python3 scripts/gpu/ncu_segments.py "$W/${tag}_source.csv" --min-share 0.2 >"$W/${tag}_segments.txt" 2>&1
  else
    tail -15 "$W/$tag.log" | tee -a "$S"
  fi
  end
}
full ncu_7b_default qwen2.5-7b "" 6          # chunk + merge: 3 of each
full ncu_7b_short qwen2.5-7b HW_ATTN_SHORT=1 3
full ncu_05b_default qwen2.5-0.5b "" 6
full ncu_05b_short qwen2.5-0.5b HW_ATTN_SHORT=1 3

# The reports themselves, if they fit what comes back.
if ls "$W"/*.ncu-rep >/dev/null 2>&1; then
  tar -czf "$OUTDIR/reps.tgz" -C "$W" $(cd "$W" && ls ./*.ncu-rep)
  if [ "$(stat -c %s "$OUTDIR/reps.tgz")" -gt $((15 * 1024 * 1024)) ]; then
    rm -f "$OUTDIR/reps.tgz"
    say "reports not kept: over 15 MiB"
  fi
fi
pack
say ""
say "done in $((SECONDS - T0)) s; OUTDIR: $(cd "$OUTDIR" && ls | tr '\n' ' ')"
