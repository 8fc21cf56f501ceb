#!/usr/bin/env bash
# Decode steps through the engine with each attention switch (the old tail, HW_ATTN_SMALL_TAIL=0;
# the rotation per token, HW_ATTN_ROT_TOKEN=1) against the default kernels,
# in interleaved rounds on one GPU (run from the repository root, after a build of bench_cuda):
#   scripts/gpu/switch_ab.sh [build-dir=native/build-gpu] [rounds=3]
# Each round runs bench_cuda once per variant (AB_SHAPES, default qwen2.5-0.5b,qwen2.5-7b;
# AB_WORKERS, default 1,4; AB_CONTEXTS, default 1k and 4k; no prefill), so a drifting clock hits every variant
# alike. Prints, per shape, W and context, the median step time of each variant over the rounds
# and its ratio to the default's. AB_VARIANTS="A=1 B=0,C=1" replaces the variants (commas join
# switches of one variant).
# Raw JSON lines (prefixed by the variant) go to $OUT/switch_ab.txt (or /tmp).
# AB_BASE_BUILD=DIR adds a variant "base": the same benchmark built from another tree (a kernel change
# against the code before it); AB_VARIANTS=" " then runs base and default alone.
set -u
B=${1:-native/build-gpu}
ROUNDS=${2:-3}
L=${OUT:-/tmp}/switch_ab.txt
: >"$L"
read -r -a variants <<<"${AB_BASE_BUILD:+base }default ${AB_VARIANTS:-HW_ATTN_SMALL_TAIL=0 HW_ATTN_ROT_TOKEN=1}"
for r in $(seq 1 "$ROUNDS"); do
  for v in "${variants[@]}"; do
    e="" b=$B
    [ "$v" = default ] || [ "$v" = base ] || e=${v//,/ }
    [ "$v" = base ] && b=$AB_BASE_BUILD
    env $e timeout 120 "$b/bench_cuda" --shapes "${AB_SHAPES:-qwen2.5-0.5b,qwen2.5-7b}" --workers "${AB_WORKERS:-1,4}" \
      --contexts "${AB_CONTEXTS:-1024,4096}" --prefill 0 --steps 20 2>&1 | grep '"kind":"decode"' | sed "s/^/$v /" >>"$L"
    echo "round $r, $v: rc ${PIPESTATUS[0]}"
  done
done
python3 - "$L" <<'EOF'
import json, statistics, sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, js = line.split(" ", 1)
    d = json.loads(js)
    rows[(d["shape"], d["W"], d["ctx"], name)].append(d["step_ms"])
keys = sorted({k[:3] for k in rows})
names = []
for *_, n in rows:
    if n not in names:
        names.append(n)
print("| shape | W | ctx | variant | median step ms (rounds) | vs default |")
print("| --- | ---: | ---: | --- | --- | ---: |")
for s, w, c in keys:
    base = statistics.median(rows.get((s, w, c, "default"), [float("nan")]))
    for n in names:
        v = rows.get((s, w, c, n))
        if not v:
            continue
        m = statistics.median(v)
        print(f"| {s} | {w} | {c} | {n} | {m:.3f} ({', '.join(f'{x:.3f}' for x in v)}) | {m / base:.3f} |")
EOF
