#!/usr/bin/env bash
# The CUDA backend's tests, on a machine with an NVIDIA GPU (the project's GPU machine: CUDA
# toolkit with cuBLAS, CMake, ninja). Run from the repository root:
#   scripts/gpu/run_cuda_tests.sh [build-dir]   (HW_SKIP_SANITIZER=1: no compute-sanitizer row;
#   HW_TEST_ROWS=REGEX: only the rows whose names match)
# Builds the native tests with nvcc (sm_90a only, to build fast; the normal build also has
# sm_80 and PTX), runs every CUDA test, the Hogwild engine tests on the CUDA backend and
# compute-sanitizer on one full Hogwild run, then prints one table. Logs go to $OUT (or
# /tmp/hw-gpu-tests). Exit status 0 only when every row passed. Benchmark switches in the
# environment reach every test binary, e.g. HW_GEMM_TILES=1 scripts/gpu/run_cuda_tests.sh runs
# the model forwards, the fixtures and the Hogwild tests with one tile per decode GEMM block.
set -u
ROOT=$(pwd)
BUILD=${1:-native/build-gpu}
LOGS=${OUT:-/tmp/hw-gpu-tests}
mkdir -p "$LOGS"
export HW_REPO_ROOT=$ROOT
rows=()
fails=0

row() {  # name, status, seconds, detail (also printed at once: a caller's timeout keeps the rows so far)
  rows+=("| $1 | $2 | $3 | $4 |")
  echo "  [row] $1: $2 ($3 s)"
  [ "$2" = PASS ] || fails=$((fails + 1))
}

run() {  # name, log, command...
  local name=$1 log=$2
  shift 2
  # HW_TEST_ROWS=REGEX runs only the rows whose names match (grep -E), e.g. "sanitizer" or "chain".
  if [ -n "${HW_TEST_ROWS:-}" ] && ! grep -qE "$HW_TEST_ROWS" <<<"$name"; then return; fi
  local t0=$SECONDS
  # Each row has a time limit (ROW_LIMIT seconds, default 90; a row takes 0-20 s on an H200): a
  # kernel that hangs (e.g. a new synchronisation protocol) fails its row, not the whole device call.
  timeout "${ROW_LIMIT:-90}" "$@" >"$LOGS/$log" 2>&1
  local rc=$?
  local detail
  detail=$(grep -E "checks, [0-9]+ failures|ERROR SUMMARY" "$LOGS/$log" | tail -1)
  [ -n "$detail" ] || detail=$(tail -1 "$LOGS/$log")
  [ $rc != 124 ] || detail="timed out after ${ROW_LIMIT:-90} s; $detail"
  row "$name" "$([ $rc = 0 ] && echo PASS || echo "FAIL (rc $rc)")" $((SECONDS - t0)) "$detail"
  [ $rc = 0 ] || { echo "---- $name failed, last lines of $log:"; tail -30 "$LOGS/$log"; }
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$LOGS/gpu.txt"
t0=$SECONDS
if cmake -S native -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
    >"$LOGS/build.log" 2>&1 &&
  cmake --build "$BUILD" --target test_cuda_ops test_cuda_fixtures test_hogwild test_attention_cuda test_attention_pdl \
    bench_cuda -j 16 >>"$LOGS/build.log" 2>&1; then
  row "build (cmake + nvcc, sm_90a)" PASS $((SECONDS - t0)) "$(grep -o 'CUDA backend ON.*' "$LOGS/build.log" | head -1)"
else
  row "build (cmake + nvcc, sm_90a)" FAIL $((SECONDS - t0)) "see build.log"
  tail -40 "$LOGS/build.log"
fi

run "CUDA ops vs CPU (NMSE), Hogwild run" ops.log "$BUILD/test_cuda_ops"
run "transformers fixtures, greedy, OOM" fixtures.log "$BUILD/test_cuda_fixtures"
run "shared-KV attention kernel vs CPU op (wgmma at head_dim 128)" attention.log "$BUILD/test_attention_cuda"
run "the same, HW_ATTN_WG=1 (asserts the wgmma kernel ran)" attention_wg.log env HW_ATTN_WG=1 "$BUILD/test_attention_cuda"
run "the same, HW_ATTN_WG_ROT=token (W = 1 too)" attention_wg_token.log env HW_ATTN_WG=1 HW_ATTN_WG_ROT=token \
  "$BUILD/test_attention_cuda"
run "the same, HW_ATTN_WG_ROT=row" attention_wg_row.log env HW_ATTN_WG=1 HW_ATTN_WG_ROT=row "$BUILD/test_attention_cuda"
run "the same, HW_ATTN_WG=0 (the mma.sync kernels)" attention_mma.log env HW_ATTN_WG=0 "$BUILD/test_attention_cuda"
run "the same, HW_ATTN_WG=0 HW_ATTN_SMALL_TAIL=0 (the old tail)" attention_oldtail.log \
  env HW_ATTN_WG=0 HW_ATTN_SMALL_TAIL=0 "$BUILD/test_attention_cuda"
run "the same, HW_ATTN_WG=0 HW_ATTN_ROT_TOKEN=1" attention_rot.log env HW_ATTN_WG=0 HW_ATTN_ROT_TOKEN=1 \
  "$BUILD/test_attention_cuda"
run "the same, HW_ATTN_WG=0 HW_ATTN_ROT_TOKEN=1 HW_ATTN_SMALL_TAIL=0" attention_rot_oldtail.log \
  env HW_ATTN_WG=0 HW_ATTN_ROT_TOKEN=1 HW_ATTN_SMALL_TAIL=0 "$BUILD/test_attention_cuda"
run "test_hogwild on the CUDA backend" hogwild.log env HW_TEST_DEVICE=cuda "$BUILD/test_hogwild"
run "attention reads before its PDL wait (slow writer)" attention_pdl.log "$BUILD/test_attention_pdl"
if [ -n "${HW_SKIP_SANITIZER:-}" ]; then
  row "compute-sanitizer" "SKIPPED" 0 "HW_SKIP_SANITIZER is set"
elif command -v compute-sanitizer >/dev/null; then
  ROW_LIMIT=400 run "compute-sanitizer memcheck, one Hogwild run" sanitizer.log \
    compute-sanitizer --tool memcheck --error-exitcode 3 "$BUILD/test_cuda_ops" --hogwild-run
  ROW_LIMIT=300 run "compute-sanitizer racecheck, attention kernels (--quick)" racecheck.log \
    compute-sanitizer --tool racecheck --error-exitcode 3 "$BUILD/test_attention_cuda" --quick
  ROW_LIMIT=300 run "compute-sanitizer memcheck, attention kernels (--quick)" memcheck_attn.log \
    compute-sanitizer --tool memcheck --error-exitcode 3 "$BUILD/test_attention_cuda" --quick
else
  row "compute-sanitizer" "NOT RUN" 0 "compute-sanitizer is not installed here"
fi

grep -hE "^  " "$LOGS/ops.log" "$LOGS/fixtures.log" 2>/dev/null
echo
echo "| test | result | s | detail |"
echo "| --- | --- | ---: | --- |"
printf '%s\n' "${rows[@]}"
exit $((fails > 0))
