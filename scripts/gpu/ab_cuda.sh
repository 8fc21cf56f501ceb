#!/usr/bin/env bash
# One GPU-machine call that checks and times this tree's CUDA backend against a base tree:
#   scripts/gpu/ab_cuda.sh BASE_DIR [seconds]      (run from this tree's root; logs under $OUT)
# 1. builds this tree (tests + benchmarks) and BASE_DIR (benchmarks only) side by side, sm_90;
# 2. scripts/gpu/run_cuda_tests.sh (every CUDA test, compute-sanitizer memcheck) and the GPU-free
#    plan test; the SASS of the new attention kernels (HMMA, LDGSTS, local memory per kernel);
# 3. shared-KV attention at 16k context against torch SDPA (attention_cuda_compare.py, new tree),
#    the base tree's kernel, the new kernel with 4 stages (one CTA per SM), with 1-group CTAs only
#    (HW_ATTN_GROUPS=1) and with PDL, in the same call;
# 4. decode steps through the engine (bench_cuda, 0.5B and 7B shapes, W = 1, 4, 8 at 1k; 7B W=4
#    at 16k), new and base, new without programmatic dependent launch (HW_CUDA_PDL=0, PDL being the default;
#    its tests run in step 2 too), and 0.5B W=4 without CUDA graphs;
# 5. a per-kernel profile of one 0.5B and one 7B decode configuration (nsys if present, else
#    ncu with only the kernel durations, summed per kernel by scripts/gpu/kernel_times.py);
# 6. if the time budget allows, scripts/gpu/bench_cuda.py --quick with the transformers +
#    torch.compile baseline for 0.5B W=4 and 7B W=4.
# Prints a short summary; everything else is in $OUT/logs.tgz (only a few files come back).
# Switches (environment): AB_ATTENTION=0 skips step 3 (attention kernels unchanged), =1 runs only
# new vs SDPA and base (no stage/group/PDL variants), AB_PDL=0 the
# PDL reruns, AB_VARIANTS="A=1 B=2" adds one engine run of the new tree per setting (benchmark
# switches such as HW_GEMM_TILES=1; W = 4), AB_TEST_VARIANTS="A=1" reruns test_attention_cuda per
# setting, AB_OPS_VARIANTS="A=1" reruns test_cuda_ops (every op and the CPU-vs-CUDA models) per
# setting (with AB_OPS_ALL=1 also test_cuda_fixtures and test_hogwild on CUDA), AB_ORDER=baseline-first runs compute-sanitizer after the engine runs, then step 6,
# then the AB_VARIANTS runs, step 3 and the profile as time allows (so a short call keeps the decode numbers);
# AB_ORDER=variants-first runs the AB_VARIANTS right after the engine runs, then compute-sanitizer, the
# profile and step 6 as time allows (step 3 not at all).
# A setting in AB_VARIANTS / AB_TEST_VARIANTS / AB_OPS_VARIANTS may set several switches joined by
# commas ("A=1,B=2"). AB_ROUNDS=N runs the AB_VARIANTS N times in interleaved rounds, each round
# starting with the new tree's defaults ("new, default"), so every variant has a default run next
# to it. AB_WORKERS (default 1,4,8) and AB_LONG=0 (no 7B W=4 16k run) shorten step 4;
# AB_VARIANT_WORKERS (default 4) sets the workers of the AB_VARIANTS runs (e.g. 1,4,8);
# AB_PROFILE_ENV="A=1,B=2" profiles the new tree with those switches in step 5, AB_SANITIZE_ENV
# runs compute-sanitizer's Hogwild run with them (the sanitizer row of run_cuda_tests.sh does not);
# AB_RACECHECK_ENV="A=1" runs compute-sanitizer racecheck on test_attention_cuda --quick with them.
set -u
NEW=$(pwd)
BASE=${1:?usage: scripts/gpu/ab_cuda.sh BASE_DIR [seconds]}
BUDGET=${2:-400}
O=${OUT:-/tmp/ab-cuda}
L=$O/logs
mkdir -p "$L"
S=$O/summary.txt
T0=$SECONDS
say() { echo "[$((SECONDS - T0))s] $*" | tee -a "$S"; }
left() { echo $((BUDGET - (SECONDS - T0))); }
export PYTHONUNBUFFERED=1 HW_REPO_ROOT=$NEW
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee -a "$S"
say "new: $NEW, base: $BASE"

AB_ATTENTION=${AB_ATTENTION:-full}
AB_PDL=${AB_PDL:-1}
AB_ORDER=${AB_ORDER:-}
AB_PROFILE_ENV=${AB_PROFILE_ENV:-}
AB_SANITIZE_ENV=${AB_SANITIZE_ENV:-}
at=""
[ "$AB_ATTENTION" != 0 ] && at=bench_attention_cuda

# 1. Builds, side by side.
cfg="-G Ninja -DCMAKE_BUILD_TYPE=Release -DHW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a"
(cmake -S native -B native/build-gpu $cfg && cmake --build native/build-gpu -j 16 --target test_cuda_ops \
  test_cuda_fixtures test_hogwild test_attention_cuda test_attention_cuda_plan bench_cuda $at) \
  >"$L/build_new.log" 2>&1 &
pn=$!
(cd "$BASE" && cmake -S native -B native/build-gpu $cfg && cmake --build native/build-gpu -j 8 --target bench_cuda \
  $at) >"$L/build_base.log" 2>&1 &
pb=$!
wait $pn && say "build new: ok" || { say "build new: FAILED"; tail -30 "$L/build_new.log"; }
wait $pb && say "build base: ok" || { say "build base: FAILED"; tail -30 "$L/build_base.log"; }
B=native/build-gpu
BB=$BASE/native/build-gpu

# 2. Tests (compute-sanitizer after the engine runs with AB_ORDER=baseline-first).
skip=""
[ "$AB_ORDER" = baseline-first ] || [ "$AB_ORDER" = variants-first ] && skip=1
OUT=$L/tests HW_SKIP_SANITIZER=$skip timeout 200 scripts/gpu/run_cuda_tests.sh $B >"$L/tests.txt" 2>&1
say "run_cuda_tests.sh rc $?"
grep -E "^\| " "$L/tests.txt" | tee -a "$S"
grep -E "^  " "$L/tests.txt" | tee -a "$S"
# Switch-selected kernel paths that the default run does not take, each against the CPU op again.
for v in ${AB_TEST_VARIANTS:-}; do
  timeout 60 env ${v//,/ } $B/test_attention_cuda >"$L/test_attention_$v.log" 2>&1
  say "$v test_attention_cuda rc $?: $(grep -E 'checks, [0-9]+ failures' "$L/test_attention_$v.log" | tail -1)"
done
if [ -n "${AB_RACECHECK_ENV:-}" ]; then  # shared-memory races of the attention kernels a switch selects
  timeout 90 env ${AB_RACECHECK_ENV//,/ } compute-sanitizer --tool racecheck --error-exitcode 3 \
    $B/test_attention_cuda --quick >"$L/racecheck.log" 2>&1
  say "$AB_RACECHECK_ENV racecheck test_attention_cuda --quick rc $?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$L/racecheck.log" | tail -1)"
fi
for v in ${AB_OPS_VARIANTS:-}; do
  timeout 120 env ${v//,/ } $B/test_cuda_ops >"$L/test_cuda_ops_$v.log" 2>&1
  say "$v test_cuda_ops rc $?: $(grep -E 'checks, [0-9]+ failures' "$L/test_cuda_ops_$v.log" | tail -1)"
  if [ -n "${AB_OPS_ALL:-}" ]; then  # the transformers fixtures and test_hogwild through the switches too
    timeout 90 env ${v//,/ } $B/test_cuda_fixtures >"$L/test_cuda_fixtures_$v.log" 2>&1
    say "$v test_cuda_fixtures rc $?: $(grep -E 'checks, [0-9]+ failures' "$L/test_cuda_fixtures_$v.log" | tail -1)"
    timeout 90 env ${v//,/ } HW_TEST_DEVICE=cuda $B/test_hogwild >"$L/test_hogwild_$v.log" 2>&1
    say "$v test_hogwild (CUDA) rc $?: $(grep -E 'checks, [0-9]+ failures' "$L/test_hogwild_$v.log" | tail -1)"
  fi
done
sanitize() {
  timeout "$1" env ${AB_SANITIZE_ENV//,/ } compute-sanitizer --tool memcheck --error-exitcode 3 $B/test_cuda_ops --hogwild-run >"$L/sanitizer.log" 2>&1
  say "compute-sanitizer memcheck, one Hogwild run: rc $? $(grep 'ERROR SUMMARY' "$L/sanitizer.log" | tail -1)"
}
# The same tests without programmatic dependent launch (HW_CUDA_PDL=0; PDL is the default).
[ "$AB_PDL" = 1 ] && for t in test_cuda_ops test_attention_cuda test_hogwild test_cuda_fixtures; do
  e=""
  [ $t = test_hogwild ] && e="HW_TEST_DEVICE=cuda"
  timeout 60 env HW_CUDA_PDL=0 $e $B/$t >"$L/pdl_$t.log" 2>&1
  say "no PDL $t rc $?: $(grep -E 'checks, [0-9]+ failures' "$L/pdl_$t.log" | tail -1)"
done
timeout 60 $B/test_attention_cuda_plan >"$L/plan_test.log" 2>&1
say "test_attention_cuda_plan rc $?: $(tail -1 "$L/plan_test.log")"
obj=$(find $B -name 'attention.cu.o' | head -1)
if [ -n "$obj" ] && command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$obj" >"$L/attention_sass.txt" 2>&1
  awk '/Function :/{f=$3} /HMMA/{h[f]++} /LDGSTS/{g[f]++} /LDL|STL/{l[f]++} END{for (k in h) print "  " h[k] " HMMA, " g[k] " LDGSTS, " l[k]+0 " LDL/STL: " k}' \
    "$L/attention_sass.txt" | tee -a "$S"
fi

# 3. Attention: new vs SDPA, base, new with 4 stages.
attention() {
say "attention: new vs SDPA"
timeout 120 python3 native/bench/cuda/attention_cuda_compare.py $B/bench_attention_cuda "$L/attention_results.md" >"$L/attention_new.log" 2>&1
grep -E "^\| [^|]+ \| (QwQ|Qwen3)" "$L/attention_results.md" | tee -a "$S"
grep -E "^RESULT" "$L/attention_new.log" | sed 's/^/new  /' >"$L/attention_ab.txt"
timeout 40 $BB/bench_attention_cuda 16384 >"$L/attention_base.log" 2>&1
grep -E "^RESULT" "$L/attention_base.log" | sed 's/^/base /' >>"$L/attention_ab.txt"
if [ "$AB_ATTENTION" = full ]; then
HW_ATTN_STAGES=4 timeout 40 $B/bench_attention_cuda 16384 >"$L/attention_new_s4.log" 2>&1
grep -E "^RESULT" "$L/attention_new_s4.log" | sed 's/^/new4 /' >>"$L/attention_ab.txt"
HW_ATTN_GROUPS=1 timeout 40 $B/bench_attention_cuda 16384 >"$L/attention_new_g1.log" 2>&1
grep -E "^RESULT" "$L/attention_new_g1.log" | sed 's/^/g1   /' >>"$L/attention_ab.txt"
HW_CUDA_PDL=0 timeout 40 $B/bench_attention_cuda 16384 >"$L/attention_new_pdl.log" 2>&1
grep -E "^RESULT" "$L/attention_new_pdl.log" | sed 's/^/nopdl  /' >>"$L/attention_ab.txt"
fi
awk '{for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } print $1, v["model"], "W=" v["W"], v["us"] " us", "plan " v["plan_us"] " us", v["launch"]}' \
  "$L/attention_ab.txt" | tee -a "$S"
}
[ "$AB_ATTENTION" != 0 ] && [ -z "$AB_ORDER" ] && attention

# 4. Engine decode steps, new and base.
eng="--shapes qwen2.5-0.5b,qwen2.5-7b --workers ${AB_WORKERS:-1,4,8} --contexts 1024 --prefill 0"
for t in new base; do
  bin=$B/bench_cuda
  [ $t = base ] && bin=$BB/bench_cuda
  timeout 120 $bin $eng >"$L/engine_$t.jsonl" 2>"$L/engine_$t.err"
  [ "${AB_LONG:-1}" = 0 ] ||
    timeout 60 $bin --shapes qwen2.5-7b --workers 4 --contexts 16384 --prefill 0 >>"$L/engine_$t.jsonl" 2>>"$L/engine_$t.err"
  grep '"decode"' "$L/engine_$t.jsonl" | sed "s/^/$t /" | tee -a "$S"
done
[ "$AB_PDL" = 1 ] && HW_CUDA_PDL=0 timeout 120 $B/bench_cuda $eng 2>"$L/engine_pdl.err" | tee "$L/engine_pdl.jsonl" |
  grep '"decode"' | sed 's/^/new, no PDL /' | tee -a "$S"
variants() {  # W = 4 (AB_VARIANT_WORKERS), both shapes: enough to pick a benchmark switch's default
  local rounds=${AB_ROUNDS:-1} list=${AB_VARIANTS:-}
  [ "$rounds" -gt 1 ] && list="default $list"
  for r in $(seq 1 "$rounds"); do
    for v in $list; do
      [ "$(left)" -gt 40 ] || { say "engine variant $v skipped: $(left) s left"; continue; }
      local sw=${v//,/ } tag="new, $v"
      [ "$v" = default ] && sw=""
      [ "$rounds" -gt 1 ] && tag="round $r, $v"
      env $sw timeout 60 $B/bench_cuda --shapes qwen2.5-0.5b,qwen2.5-7b --workers "${AB_VARIANT_WORKERS:-4}" \
        --contexts 1024 --prefill 0 \
        2>"$L/engine_${v}_$r.err" | tee "$L/engine_${v}_$r.jsonl" | grep '"decode"' | sed "s/^/$tag /" | tee -a "$S"
    done
  done
}
[ -z "$AB_ORDER" ] && variants
HW_CUDA_GRAPH=0 timeout 60 $B/bench_cuda --shapes qwen2.5-0.5b --workers 4 --contexts 1024 --prefill 0 2>&1 |
  grep '"decode"' | sed 's/^/new, no graph /' | tee -a "$S"

tar -czf "$O/logs.tgz" -C "$O" logs  # a first copy, in case the call runs out of time later

# 5. Per-kernel profile of one step configuration (2 steps: the second is a CUDA graph replay).
profile() {
NSYS=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys 2>/dev/null | head -1)
for shape in qwen2.5-0.5b qwen2.5-7b; do
  [ "$(left)" -gt 60 ] || { say "profile of $shape skipped: $(left) s left"; continue; }
  args="--shapes $shape --workers 4 --contexts 1024 --prefill 0 --warmup 1 --steps 1"
  if [ -n "$NSYS" ]; then
    timeout 90 env ${AB_PROFILE_ENV//,/ } "$NSYS" profile --stats=true -o "$L/nsys_$shape" $B/bench_cuda $args >"$L/nsys_$shape.txt" 2>&1
    say "nsys $shape rc $?"
  fi
  timeout 90 env ${AB_PROFILE_ENV//,/ } ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv --page raw \
    $B/bench_cuda $args >"$L/ncu_$shape.csv" 2>"$L/ncu_$shape.err"
  say "ncu $shape rc $?"
done
python3 scripts/gpu/kernel_times.py "$L/ncu_qwen2.5-0.5b.csv" "$L/ncu_qwen2.5-7b.csv" 2>&1 | tee -a "$S"

}

# 6. The transformers baseline, if the budget allows (about 160 s).
baseline() {
if [ "$(left)" -gt ${AB_BASELINE_MIN:-170} ]; then
  say "bench_cuda.py --quick with the transformers baseline ($(left) s left)"
  OUT=$L/bench timeout $(($(left) - 10)) python3 scripts/gpu/bench_cuda.py --build $B --quick \
    --baseline "qwen2.5-0.5b:4,qwen2.5-7b:4" >"$L/bench_cuda_py.txt" 2>&1
  say "bench_cuda.py rc $?"
  grep -E "transformers|^- |copy" "$L/bench_cuda_py.txt" | tee -a "$S"
else
  say "bench_cuda.py skipped: $(left) s left"
fi
}

if [ "$AB_ORDER" = variants-first ]; then  # engine variants, then memcheck and the profile as time allows
  variants
  tar -czf "$O/logs.tgz" -C "$O" logs
  if [ "$(left)" -gt 70 ]; then sanitize 90; else say "compute-sanitizer skipped: $(left) s left"; fi
  tar -czf "$O/logs.tgz" -C "$O" logs
  profile
  baseline
elif [ "$AB_ORDER" = baseline-first ]; then
  sanitize 120
  tar -czf "$O/logs.tgz" -C "$O" logs
  baseline
  tar -czf "$O/logs.tgz" -C "$O" logs
  variants
  if [ "$AB_ATTENTION" != 0 ] && [ "$(left)" -gt 60 ]; then attention; else say "attention skipped: $(left) s left"; fi
  tar -czf "$O/logs.tgz" -C "$O" logs
  profile
else
  profile
  baseline
fi
tar -czf "$O/logs.tgz" -C "$O" logs
say "done"
