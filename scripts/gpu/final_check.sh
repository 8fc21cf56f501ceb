#!/usr/bin/env bash
# One GPU-machine call that checks a tree and times it against a base tree (run from the
# repository root; base = another checkout's root, e.g. one staged under .gpu/):
#   scripts/gpu/final_check.sh BASE_DIR
# 1. builds this tree (every CUDA test and benchmark) and BASE_DIR (benchmarks), sm_90a;
# 2. bench_sampling (the sampling kernels alone: fast path and the single-block path), where the
#    tree has it;
#    bench_persistent_probe ("probe": would a persistent decode step pay? bench/cuda-decode-notes.md);
# 3. attention_ab.sh at 16k (QwQ-32B and Qwen3-8B shapes, W = 1-8), base against this tree;
# 4. switch_ab.sh decode steps at 1k (Qwen2.5-0.5B, Qwen2.5-7B, Qwen3-8B; W = 1, 4, 8), base
#    against this tree and the switches of CHECK_DECODE_VARIANTS (default "HW_SAMPLE_FAST=0"; a space
#    between variants, a comma between the switches of one) ("decode"); 7B W = 4 at 16k with the
#    switches of CHECK_LONG_VARIANTS, if set ("long"); the Qwen3-0.6B shape with and without the
#    warpgroup attention kernel ("qwen3");
# 5. the host's share of a decode step (bench_cuda --device-time: each step's wall time against its
#    kernels' device time; 0.5B and 7B, W = 1, 4, 8, 1k) ("hostshare"); decode steps that ask for
#    the attention shares per segment (a run panel's) and for those and the attention on every
#    key (the token inspector's), against none (bench_cuda --shares; 0.5B and 7B, W = 4, 1k and
#    16k) ("shares");
# 6. ncu of one 7B W = 4 step with the default and with each setting of CHECK_NCU_VARIANTS (default
#    "HW_GEMM_TILES=2"; per launch; scripts/gpu/decode_profile.sh);
# 7. scripts/gpu/run_cuda_tests.sh (every CUDA test, compute-sanitizer).
# 3 interleaved rounds each. Summaries on stdout; logs in $OUT/logs.tgz.
# CHECK_PARTS (default all: sampling,probe,attention,decode,long,qwen3,hostshare,shares,ncu,tests) picks the steps after
# the build, so that the timings and the tests can go in calls of 10 minutes; CHECK_DECODE_TIMEOUT
# (default 200 s) bounds the 1k decode A/B, CHECK_TESTS_TIMEOUT (280 s) the tests; CHECK_DECODE_SHAPES
# and CHECK_DECODE_WORKERS narrow the 1k A/B (defaults qwen2.5-0.5b,qwen2.5-7b,qwen3-8b and 1,4,8).
set -u
PARTS=",${CHECK_PARTS:-sampling,probe,attention,decode,long,qwen3,hostshare,shares,ncu,tests},"
want() { [[ $PARTS == *",$1,"* ]]; }
save() { tar -czf "$O/logs.tgz" -C "$L" . 2>/dev/null; }  # after every step: a call cut short keeps the logs so far
BASE=${1:?usage: scripts/gpu/final_check.sh BASE_DIR}
O=${OUT:-/tmp/final-check}
L=$(mktemp -d /tmp/final-check-logs.XXXX)  # one per call: a warm machine keeps /tmp between calls
mkdir -p "$L" "$O"
export HW_REPO_ROOT=$(pwd)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
sampling="" probe=""
[ -f native/bench/cuda/bench_sampling.cpp ] && sampling=bench_sampling
[ -f native/bench/bench_persistent_probe.cu ] && probe=bench_persistent_probe
cfg="-G Ninja -DCMAKE_BUILD_TYPE=Release -DHW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a"
(cmake -S native -B native/build-gpu $cfg && cmake --build native/build-gpu -j 10 --target test_cuda_ops \
  test_cuda_fixtures test_hogwild test_attention_cuda test_attention_pdl bench_cuda bench_attention_cuda \
  $sampling $probe) >"$L/build_new.log" 2>&1 &
if want attention || want decode; then  # the base tree is only timed
  (cd "$BASE" && cmake -S native -B native/build-gpu $cfg && cmake --build native/build-gpu -j 6 --target bench_cuda \
    bench_attention_cuda) >"$L/build_base.log" 2>&1 &
  save
fi
wait
tail -n 1 "$L"/build_*.log
BB=$BASE/native/build-gpu

if [ -n "$sampling" ] && want sampling; then
  echo "## bench_sampling"
  timeout 60 native/build-gpu/bench_sampling 2>&1 | tee "$L/sampling.txt"
  save
fi
if [ -n "$probe" ] && want probe; then
  echo "## bench_persistent_probe (kernel boundary vs device-wide barrier; layers streamed six ways)"
  timeout 120 native/build-gpu/bench_persistent_probe 2>&1 | tee "$L/probe.txt"
  save
fi
if want attention; then
  echo "## attention, 16k: base vs this tree"
  AB_BASE_BUILD=$BB AB_VARIANTS=" " OUT=$L timeout 150 scripts/gpu/attention_ab.sh native/build-gpu 3 | grep -v "^round"
  save
fi
if want decode; then
  echo "## decode steps, 1k: base vs this tree (and, where the tree has the fast sampling path, with the old one)"
  AB_BASE_BUILD=$BB AB_VARIANTS="${CHECK_DECODE_VARIANTS:-HW_SAMPLE_FAST=0}" AB_SHAPES=${CHECK_DECODE_SHAPES:-qwen2.5-0.5b,qwen2.5-7b,qwen3-8b} AB_WORKERS=${CHECK_DECODE_WORKERS:-1,4,8} AB_CONTEXTS=1024 \
    OUT=$L timeout "${CHECK_DECODE_TIMEOUT:-200}" scripts/gpu/switch_ab.sh native/build-gpu 3 | grep -v "^round"
  cp "$L/switch_ab.txt" "$L/switch_ab_base.txt"
  save
fi
if want long && [ -n "${CHECK_LONG_VARIANTS:-}" ]; then
  echo "## decode steps, 7B W=4 16k: this tree and CHECK_LONG_VARIANTS"
  AB_VARIANTS="$CHECK_LONG_VARIANTS" AB_SHAPES=qwen2.5-7b AB_WORKERS=4 AB_CONTEXTS=16384 \
    OUT=$L timeout 120 scripts/gpu/switch_ab.sh native/build-gpu 3 | grep -v "^round"
  cp "$L/switch_ab.txt" "$L/switch_ab_long.txt"
  save
fi
if want qwen3; then
  echo "## Qwen3-0.6B shape: the warpgroup kernel (default) vs HW_ATTN_WG=0"
  AB_VARIANTS="HW_ATTN_WG=0" AB_SHAPES=qwen3-0.6b AB_WORKERS=1,4,8 AB_CONTEXTS=1024,4096 \
    OUT=$L timeout 100 scripts/gpu/switch_ab.sh native/build-gpu 3 | grep -v "^round"
  save
fi
if want hostshare; then
  echo "## host share of a decode step: step_ms (wall) against device_ms (the step's kernels)"
  timeout 90 native/build-gpu/bench_cuda --shapes qwen2.5-0.5b,qwen2.5-7b --workers 1,4,8 --contexts 1024 \
    --prefill 0 --steps 20 --device-time 2>&1 | grep '"kind":"decode"' | tee "$L/hostshare.txt"
  save
fi
if want shares; then
  echo "## decode steps with attention shares: none, per segment (shared-KV kernel), per key (generic kernel)"
  for round in 1 2 3; do
    for sh in none segments keys; do
      timeout 60 native/build-gpu/bench_cuda --shapes qwen2.5-0.5b,qwen2.5-7b --workers 4 --contexts 1024,16384 \
        --prefill 0 --steps 12 --shares $sh 2>&1 | grep -E '"kind":"decode"|graph' | sed "s/^/[round $round, $sh] /" |
        tee -a "$L/shares.txt"
    done
  done
  save
fi
if want ncu; then
  echo "## ncu, 7B W=4 1k: the default and each of CHECK_NCU_VARIANTS (which kernel gains, which loses)"
  for e in default ${CHECK_NCU_VARIANTS:-HW_GEMM_TILES=2}; do
    echo "[$e]"
    sw=""
    [ "$e" = default ] || sw=$e
    PROFILE_NO_BUILD=1 PROFILE_NCU_ONLY=1 PROFILE_SHAPES=qwen2.5-7b PROFILE_SEQ=9 PROFILE_ENV=$sw OUT=$L/ncu_$e \
      scripts/gpu/decode_profile.sh native/build-gpu
  done
  save
fi
if want tests; then
  echo "## run_cuda_tests.sh"
  # Each row on stdout as it ends (a call cut at its limit still shows them), the table at the end.
  ROW_LIMIT=150 OUT=$L/tests timeout "${CHECK_TESTS_TIMEOUT:-280}" scripts/gpu/run_cuda_tests.sh native/build-gpu \
    2>&1 | tee "$L/tests.txt" | grep --line-buffered "^  \[row\]"
  echo "rc ${PIPESTATUS[0]}"
  grep -E "^\| |^  [^[]" "$L/tests.txt"
  save
fi
save
