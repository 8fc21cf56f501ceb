#!/usr/bin/env bash
# Where a decode step's time goes, in one GPU-machine call (run from the repository root):
#   scripts/gpu/decode_profile.sh [build-dir=native/build-gpu]
# 1. builds bench_cuda (sm_90a) unless PROFILE_NO_BUILD=1;
# 2. the device's read and copy bandwidth (torch), so each GEMM's rate has its ceiling beside it;
# 3. decode steps (bench_cuda, PROFILE_SHAPES, default qwen2.5-0.5b,qwen2.5-7b; W = 1, 4, 8 at 1k);
# 4. one ncu step per shape at W = 4, 1k (kernel durations and DRAM bytes read): the per-kernel
#    sums and the first PROFILE_SEQ (default 24) launches of the step in order, each with its
#    bandwidth (scripts/gpu/kernel_times.py --seq).
# PROFILE_ENV="A=1,B=2" runs steps 3-4 with those switches; PROFILE_NCU_ONLY=1 runs step 4 alone.
# Logs go to $OUT (or /tmp/decode-profile).
set -u
B=${1:-native/build-gpu}
L=${OUT:-/tmp/decode-profile}
mkdir -p "$L"
SHAPES=${PROFILE_SHAPES:-qwen2.5-0.5b,qwen2.5-7b}
ENV=${PROFILE_ENV:-}
export HW_REPO_ROOT=$(pwd)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if [ "${PROFILE_NO_BUILD:-0}" != 1 ]; then
  cmake -S native -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
    >"$L/build.log" 2>&1 && cmake --build "$B" -j 16 --target bench_cuda >>"$L/build.log" 2>&1 ||
    { echo "build failed"; tail -30 "$L/build.log"; exit 1; }
fi

if [ "${PROFILE_NCU_ONLY:-0}" != 1 ]; then
python3 - <<'EOF'
import torch
a = torch.empty(1 << 30, dtype=torch.bfloat16, device="cuda").uniform_()  # 2 GiB
b = torch.empty_like(a)
def timed(f, n=10):
    f(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n): f()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / n / 1e3
t = timed(lambda: b.copy_(a))
print(f"copy (read + write): {2 * a.numel() * 2 / t / 1e12:.2f} TB/s")
v = a.view(-1, 4096)
t = timed(lambda: v.sum(dim=1, dtype=torch.float32))
print(f"read (row sums): {a.numel() * 2 / t / 1e12:.2f} TB/s")
x = torch.randn(4, 4096, dtype=torch.bfloat16, device="cuda")
t = timed(lambda: torch.matmul(x, v.t()))
print(f"read (cuBLAS matmul M = 4 against the 2 GiB as [K = 4096, N]): {a.numel() * 2 / t / 1e12:.2f} TB/s")
EOF

env ${ENV//,/ } timeout 120 "$B/bench_cuda" --shapes "$SHAPES" --workers 1,4,8 --contexts 1024 --prefill 0 --steps 20 \
  2>"$L/steps.err" | grep '"decode"' | tee "$L/steps.jsonl"
fi

for shape in ${SHAPES//,/ }; do
  env ${ENV//,/ } timeout 120 ncu --clock-control none --cache-control none \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum --csv --page raw \
    "$B/bench_cuda" --shapes "$shape" --workers 4 --contexts 1024 --prefill 0 --warmup 1 --steps 1 \
    >"$L/ncu_$shape.csv" 2>"$L/ncu_$shape.err"
  echo "ncu $shape rc $?"
  python3 scripts/gpu/kernel_times.py --seq "${PROFILE_SEQ:-24}" "$L/ncu_$shape.csv"
done
