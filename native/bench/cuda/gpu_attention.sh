#!/usr/bin/env bash
# On the GPU machine: builds the CUDA Hogwild attention test and benchmark with nvcc (sm_80 and
# sm_90), checks the SASS (tensor-core HMMA, no local-memory spills in the main kernel), runs the
# test against its double reference, compute-sanitizer on a few cases, then the benchmark against
# torch SDPA. Logs and the results table go to OUTDIR.
# Usage: native/bench/cuda/gpu_attention.sh OUTDIR [--no-sanitizer] [--no-racecheck] [--synccheck]
#        [--variant-sanitizers] [--ncu] [--stages3]
# ATTN_VARIANTS="HW_ATTN_SHORT=1 A=1,B=2" (environment): each setting also runs the test, the sanitizers
# (--quick) and the benchmark (a second table block, beside the default) with those switches set;
# --variant-sanitizers runs the sanitizers for those settings only.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
out=${1:?usage: native/bench/cuda/gpu_attention.sh OUTDIR}
b=$(mktemp -d /tmp/attn-build.XXXX)
mkdir -p "$out"
src=$root/native/src
arch="-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$out/gpu.txt"
# Host sources, each to its own object (cpu/attention.cpp and cuda/attention.cu share a stem).
host="cpu/rope.cpp cpu/parallel.cpp error.cpp cuda/attention_work.cpp kv_cache.cpp attention_plan.cpp cpu/attention.cpp cpu/attention_avx2.cpp cpu/attention_avx512.cpp cpu/attention_avx512bf16.cpp cpu/attention_amx.cpp"
for f in $host; do
  g++ -std=c++17 -O2 -march=x86-64-v3 -fopenmp -c "$src/$f" -o "$b/host_$(echo "$f" | tr / _ | sed 's/\.cpp$//').o" &
done
nvcc -std=c++17 -O3 $arch -Xptxas -v -c "$src/cuda/attention.cu" -o "$b/attention_cuda.o" 2> "$out/ptxas.txt" &
nvcc -std=c++17 -O2 -c "$src/cuda/cuda_check.cpp" -o "$b/cuda_check.o" &  # launch helpers (PDL switch)
nvcc -std=c++17 -O2 $arch -I"$src" -c "$root/native/tests/cuda/test_attention_cuda.cpp" -o "$b/test.o" &
nvcc -std=c++17 -O2 $arch -I"$src" -c "$root/native/bench/cuda/bench_attention_cuda.cpp" -o "$b/bench.o" &
wait
objs="$b/attention_cuda.o $b/cuda_check.o $b/host_*.o -lgomp"
nvcc -o "$b/test_attention_cuda" "$b/test.o" $objs
nvcc -o "$b/bench_attention_cuda" "$b/bench.o" $objs
g++ -std=c++17 -O2 -march=x86-64-v3 -I"$src" -I"$(dirname "$(command -v nvcc)")/../include" \
  "$root/native/tests/cuda/test_attention_cuda_plan.cpp" $b/host_*.o -fopenmp -o "$b/test_attention_cuda_plan"
"$b/test_attention_cuda_plan" 2>&1 | tail -3 | tee "$out/test_plan.log" || echo "test_attention_cuda_plan FAILED"
cuobjdump -sass -arch sm_90a "$b/attention_cuda.o" > "$b/sass90.txt"
echo "sm_90 SASS: $(grep -c HMMA "$b/sass90.txt") HMMA, $(grep -c LDSM "$b/sass90.txt") LDSM, $(grep -c LDGSTS "$b/sass90.txt") LDGSTS, $(grep -cE '\b(LDL|STL)\b' "$b/sass90.txt") LDL/STL" | tee "$out/sass.txt"
grep -E "registers|spill" "$out/ptxas.txt" | sort | uniq -c | tee -a "$out/sass.txt"
timeout 120 "$b/test_attention_cuda" 2>&1 | tee "$out/test.log" || echo "test_attention_cuda FAILED (benchmark still run)"
for v in ${ATTN_VARIANTS:-}; do
  env ${v//,/ } timeout 120 "$b/test_attention_cuda" >"$out/test_$v.log" 2>&1 || echo "test_attention_cuda with $v FAILED (rc $?)"
  echo "$v: $(tail -2 "$out/test_$v.log" | tr '\n' ' ')"
done
opts=" ${*:2} "
if [[ "$opts" != *" --no-sanitizer "* ]]; then
  sets="default ${ATTN_VARIANTS:-}"
  [[ "$opts" == *" --variant-sanitizers "* ]] && sets=${ATTN_VARIANTS:-}  # the default kernels' runs skipped
  for v in $sets; do
    e=""
    [ "$v" = default ] || e=${v//,/ }
    echo "sanitizers ($v):" | tee -a "$out/sanitizer.log"
    env $e timeout 150 compute-sanitizer --tool memcheck "$b/test_attention_cuda" --quick 2>&1 | tail -3 | tee -a "$out/sanitizer.log" || true
    [[ "$opts" == *" --no-racecheck "* ]] ||
      env $e timeout 150 compute-sanitizer --tool racecheck "$b/test_attention_cuda" --quick 2>&1 | tail -3 | tee -a "$out/sanitizer.log" || true
    [[ "$opts" == *" --synccheck "* ]] &&
      { env $e timeout 150 compute-sanitizer --tool synccheck "$b/test_attention_cuda" --quick 2>&1 | tail -3 | tee -a "$out/sanitizer.log" || true; }
  done
fi
if [[ "$opts" == *" --stages3 "* ]]; then  # the 3-stage variant sm_80 gets, timed on this GPU
  HW_ATTN_STAGES=3 "$b/bench_attention_cuda" 16384 2>&1 | tee "$out/bench_stages3.log"
fi
PYTHONUNBUFFERED=1 python3 "$root/native/bench/cuda/attention_cuda_compare.py" "$b/bench_attention_cuda" "$out/attention_results.md" 2>&1 | tee "$out/bench.log"
if [[ "$opts" == *" --ncu "* ]]; then
  for w in 1 8; do
    for v in default ${ATTN_VARIANTS:-}; do
    e=""
    [ "$v" = default ] || e=${v//,/ }
    env $e ncu --clock-control none --kernel-name regex:attn_ --launch-skip 10 --launch-count 2 \
      --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats \
      --section MemoryWorkloadAnalysis --section SchedulerStats \
      "$b/bench_attention_cuda" 16384 QwQ-32B $w > "$out/ncu_w${w}_$v.txt" 2>&1 || true
    echo "ncu W=$w $v:"
    grep -E "attn_|Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Registers Per|Stall|Warp Cycles Per Issued|Issued Warp|No Eligible|Theoretical Occ|Block Limit" "$out/ncu_w${w}_$v.txt" | head -60
    done
  done
fi
