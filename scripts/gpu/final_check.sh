#!/usr/bin/env bash
# One GPU-machine call that checks a tree and times it against a base tree (run from the
# repository root; base = another checkout's root, e.g. one staged under .gpu/):
#   scripts/gpu/final_check.sh BASE_DIR
# 1. builds this tree (every CUDA test and benchmark) and BASE_DIR (benchmarks), sm_90a;
# 2. bench_sampling (the sampling kernels alone: fast path and the single-block path), where the
#    tree has it (branch s15-sampling);
# 3. attention_ab.sh at 16k (QwQ-32B and Qwen3-8B shapes, W = 1-8), base against this tree;
# 4. switch_ab.sh decode steps at 1k (Qwen2.5-0.5B, Qwen2.5-7B, Qwen3-8B; W = 1, 4, 8), base
#    against this tree, and the Qwen3-0.6B shape with and without the warpgroup attention kernel;
# 5. ncu of one 7B W = 4 step with the default GEMMs and with 2 tiles x 8 chunks (per launch;
#    scripts/gpu/decode_profile.sh);
# 6. scripts/gpu/run_cuda_tests.sh (every CUDA test, compute-sanitizer).
# 3 interleaved rounds each. Summaries on stdout; logs in $OUT/logs.tgz.
set -u
BASE=${1:?usage: scripts/gpu/final_check.sh BASE_DIR}
O=${OUT:-/tmp/final-check}
L=/tmp/final-check-logs
mkdir -p "$L" "$O"
export HW_REPO_ROOT=$(pwd)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
sampling=""
[ -f native/bench/cuda/bench_sampling.cpp ] && sampling=bench_sampling
cfg="-G Ninja -DCMAKE_BUILD_TYPE=Release -DHW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a"
(cmake -S native -B native/build-gpu $cfg && cmake --build native/build-gpu -j 10 --target test_cuda_ops \
  test_cuda_fixtures test_hogwild test_attention_cuda test_attention_pdl bench_cuda bench_attention_cuda \
  $sampling) >"$L/build_new.log" 2>&1 &
(cd "$BASE" && cmake -S native -B native/build-gpu $cfg && cmake --build native/build-gpu -j 6 --target bench_cuda \
  bench_attention_cuda) >"$L/build_base.log" 2>&1 &
wait
tail -n 1 "$L/build_new.log" "$L/build_base.log"
BB=$BASE/native/build-gpu

if [ -n "$sampling" ]; then
  echo "## bench_sampling"
  timeout 60 native/build-gpu/bench_sampling 2>&1 | tee "$L/sampling.txt"
fi
echo "## attention, 16k: base vs this tree"
AB_BASE_BUILD=$BB AB_VARIANTS=" " OUT=$L timeout 150 scripts/gpu/attention_ab.sh native/build-gpu 3 | grep -v "^round"
echo "## decode steps, 1k: base vs this tree (and, where the tree has the fast sampling path, with the old one)"
AB_BASE_BUILD=$BB AB_VARIANTS="HW_SAMPLE_FAST=0" AB_SHAPES=qwen2.5-0.5b,qwen2.5-7b,qwen3-8b AB_WORKERS=1,4,8 AB_CONTEXTS=1024 \
  OUT=$L timeout 200 scripts/gpu/switch_ab.sh native/build-gpu 3 | grep -v "^round"
cp "$L/switch_ab.txt" "$L/switch_ab_base.txt"
echo "## Qwen3-0.6B shape: the warpgroup kernel (default) vs HW_ATTN_WG=0"
AB_VARIANTS="HW_ATTN_WG=0" AB_SHAPES=qwen3-0.6b AB_WORKERS=1,4,8 AB_CONTEXTS=1024,4096 \
  OUT=$L timeout 100 scripts/gpu/switch_ab.sh native/build-gpu 3 | grep -v "^round"
echo "## ncu, 7B W=4 1k: the default and 2 tiles x 8 chunks for o/down/lm_head (which GEMM gains, which loses)"
for e in default HW_GEMM_TILES=2,HW_GEMM_UNROLL=8; do
  echo "[$e]"
  sw=""
  [ "$e" = default ] || sw=$e
  PROFILE_NO_BUILD=1 PROFILE_NCU_ONLY=1 PROFILE_SHAPES=qwen2.5-7b PROFILE_SEQ=9 PROFILE_ENV=$sw OUT=$L/ncu_$e \
    scripts/gpu/decode_profile.sh native/build-gpu
done
echo "## run_cuda_tests.sh"
ROW_LIMIT=150 OUT=$L/tests timeout 280 scripts/gpu/run_cuda_tests.sh native/build-gpu >"$L/tests.txt" 2>&1
echo "rc $?"
grep -E "^\| |^  " "$L/tests.txt"
tar -czf "$O/logs.tgz" -C "$L" .
