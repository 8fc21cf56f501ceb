#!/usr/bin/env bash
# One device call for the warpgroup-MMA attention kernel (HW_ATTN_WG, attention_wgmma.cuh), from
# the repository root: build (sm_90a), test_attention_cuda with each HW_ATTN_WG setting, then the
# op alone at 16k and 1k / 4k against the default kernel (attention_ab.sh) and, with
# WG_STEPS=1 and every test passed, decode steps through the engine (switch_ab.sh). $OUT gets
# summary.txt and logs.tgz (every log).
#   scripts/gpu/wg_trial.sh [build-dir=native/build-gpu] [rounds=3]
# WG_TESTS, WG_AB (attention_ab / switch_ab variants), WG_STEPS=1, WG_SDPA: see below.
set -u
B=${1:-native/build-gpu}
ROUNDS=${2:-3}
O=${OUT:-/tmp/wg-trial}
mkdir -p "$O"
S=$O/summary.txt
: >"$S"
say() { echo "$*" | tee -a "$S"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$S"
t0=$SECONDS
cmake -S native -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a >"$O/build.log" 2>&1 &&
  cmake --build "$B" -j 16 --target test_attention_cuda bench_attention_cuda bench_cuda >>"$O/build.log" 2>&1
say "build rc $? in $((SECONDS - t0)) s"
grep -E "error" "$O/build.log" | head -20 | tee -a "$S"
tests_ok=1
# WG_TESTS: ";"-separated switch sets, each a run of test_attention_cuda.
IFS=';' read -r -a tests <<<"${WG_TESTS:-HW_ATTN_WG=1;HW_ATTN_WG=1 HW_ATTN_WG_ROT=row;HW_ATTN_WG=2}"
for v in "${tests[@]}"; do
  t0=$SECONDS
  env $v timeout 120 "$B/test_attention_cuda" >"$O/test_${v// /_}.log" 2>&1
  rc=$?
  [ $rc = 0 ] || tests_ok=0
  say "test_attention_cuda $v: rc $rc in $((SECONDS - t0)) s: $(grep -E 'checks, [0-9]+ failures' "$O/test_${v// /_}.log" | tail -1)"
  grep -m 5 -E "FAIL|nmse|error" "$O/test_${v// /_}.log" | head -5 | tee -a "$S"
done
t0=$SECONDS
AB=${WG_AB:-HW_ATTN_WG=1 HW_ATTN_WG=1,HW_ATTN_WG_ROT=row HW_ATTN_WG=2}
OUT=$O AB_VARIANTS="$AB" AB_WORKERS=1,2,4,8,16 \
  scripts/gpu/attention_ab.sh "$B" "$ROUNDS" >"$O/ab16k.txt" 2>&1
cp "$O/attention_ab.txt" "$O/ab16k_raw.txt"
say "attention_ab 16k in $((SECONDS - t0)) s"
grep "^|" "$O/ab16k.txt" | tee -a "$S"
t0=$SECONDS
OUT=$O AB_VARIANTS="$AB" AB_WORKERS=1,4,8 AB_CONTEXTS=1024,4096 \
  AB_SHAPES=Qwen2.5-0.5B,Qwen2.5-7B,QwQ-32B scripts/gpu/attention_ab.sh "$B" "$ROUNDS" >"$O/ab1k.txt" 2>&1
say "attention_ab 1k/4k in $((SECONDS - t0)) s"
grep "^|" "$O/ab1k.txt" | tee -a "$S"
if [ -n "${WG_STEPS:-}" ] && [ $tests_ok = 1 ]; then
  t0=$SECONDS
  OUT=$O AB_WORKERS=1,4,8 AB_VARIANTS="$AB" scripts/gpu/switch_ab.sh "$B" 2 >"$O/steps.txt" 2>&1
  say "switch_ab in $((SECONDS - t0)) s"
  grep "^|" "$O/steps.txt" | tee -a "$S"
fi
# Against single-sequence torch SDPA in the same run (the issue's attention target), WG_SDPA="A=1 B=1,C=2".
if [ -n "${WG_SDPA:-}" ]; then
  t0=$SECONDS
  vs=()
  for v in $WG_SDPA; do vs+=(--variant "$v"); done
  PYTHONUNBUFFERED=1 timeout 240 python3 native/bench/cuda/attention_cuda_compare.py "$B/bench_attention_cuda" \
    "$O/sdpa.md" "${vs[@]}" >"$O/sdpa.log" 2>&1
  say "SDPA comparison rc $? in $((SECONDS - t0)) s"
  grep "^|" "$O/sdpa.md" | tee -a "$S"
fi
# The device returns a few files: the summary, and every log in one archive.
# (the archive is written outside $O first: tar reading a folder it writes into fails)
tar czf /tmp/wg-logs.tgz -C "$O" --exclude=summary.txt . && find "$O" -type f ! -name summary.txt -delete &&
  mv /tmp/wg-logs.tgz "$O/logs.tgz"
