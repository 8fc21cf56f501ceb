#!/usr/bin/env bash
# One short device call for the input RMSNorm folded into the decode GEMM (HW_GEMM_FOLD_NORM):
#   OUT=/some/dir scripts/gpu/quick_fold_norm.sh [seconds]
# from the repository root (or a staged copy's). In order, each result appended to
# $OUT/summary.txt as it comes (a call cut short still returns what it has):
# 1. builds test_cuda_ops and bench_cuda for sm_90 (-j 16);
# 2. test_cuda_ops with HW_GEMM_FOLD_NORM=2 (its op test forces off / 1 / 2 itself; the model
#    forwards, the Hogwild run and the CUDA-graph replay go through the fold: modes 1 and 2 do the
#    same arithmetic, so one of them covers both);
# 3. bench_cuda decode steps, 0.5B and 7B shapes, W = 4, 1k context, in interleaved rounds of
#    off / mode 1 / mode 2 (median step ms of each run);
# 4. as time allows: test_cuda_ops with HW_GEMM_FOLD_NORM=1, then with the fold off.
set -u
O=${OUT:-/tmp/quick-fold}
mkdir -p "$O"
S=$O/summary.txt
BUDGET=${1:-180}
T0=$SECONDS
say() { echo "[$((SECONDS - T0))s] $*" | tee -a "$S"; }
left() { echo $((BUDGET - (SECONDS - T0))); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$S"
say "tree: $(pwd)"

B=native/build-gpu
if ! (cmake -S native -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DHW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a &&
  cmake --build $B -j 16 --target test_cuda_ops bench_cuda) >"$O/build.log" 2>&1; then
  say "build FAILED"
  tail -40 "$O/build.log" | tee -a "$S"
  exit 1
fi
say "build ok"

ops() {  # $1: HW_GEMM_FOLD_NORM value
  [ "$(left)" -gt 30 ] || { say "test_cuda_ops HW_GEMM_FOLD_NORM=$1 skipped: $(left) s left"; return; }
  HW_GEMM_FOLD_NORM=$1 timeout $(($(left) - 5)) $B/test_cuda_ops >"$O/ops_$1.log" 2>&1
  say "test_cuda_ops HW_GEMM_FOLD_NORM=$1: rc $?"
  grep -E "folded|FAIL|checks|passed|failed" "$O/ops_$1.log" | head -20 | tee -a "$S"
}
ops 2

eng="--shapes qwen2.5-0.5b,qwen2.5-7b --workers 4 --contexts 1024 --prefill 0 --steps 30"
for round in 1 2; do
  for v in 0 1 2; do
    [ "$(left)" -gt 25 ] || { say "bench round $round fold=$v skipped: $(left) s left"; continue; }
    HW_GEMM_FOLD_NORM=$v timeout 40 $B/bench_cuda $eng 2>>"$O/bench.err" | grep '"decode"' |
      sed "s/^/round $round fold=$v /" | tee -a "$S"
  done
done
ops 1
ops 0
say "done"
