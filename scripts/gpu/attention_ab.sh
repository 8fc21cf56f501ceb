#!/usr/bin/env bash
# The Hogwild attention op alone (bench_attention_cuda: combined layout, realistic blocks) with each
# switch setting against the default, in interleaved rounds on one GPU (from the repository root,
# after a build of bench_attention_cuda):
#   scripts/gpu/attention_ab.sh [build-dir=native/build-gpu] [rounds=3]
# AB_VARIANTS="A=1 B=0,C=1" (commas join the switches of one variant), AB_CONTEXTS (default 16384),
# AB_SHAPES (default QwQ-32B,Qwen3-8B), AB_WORKERS (default 1,2,4,8). Prints, per shape and W, the
# median us of each variant over the rounds and its ratio to the default's; raw lines go to
# $OUT/attention_ab.txt (or /tmp).
# AB_BASE_BUILD=DIR adds a variant "base": the same benchmark built from another tree (a kernel change
# against the code before it); AB_VARIANTS=" " then runs base and default alone.
set -u
B=${1:-native/build-gpu}
ROUNDS=${2:-3}
L=${OUT:-/tmp}/attention_ab.txt
: >"$L"
read -r -a variants <<<"${AB_BASE_BUILD:+base }default ${AB_VARIANTS:-HW_ATTN_ROT_TOKEN=1}"
for r in $(seq 1 "$ROUNDS"); do
  for v in "${variants[@]}"; do
    e="" b=$B
    [ "$v" = default ] || [ "$v" = base ] || e=${v//,/ }
    [ "$v" = base ] && b=$AB_BASE_BUILD
    env $e timeout 60 "$b/bench_attention_cuda" --contexts "${AB_CONTEXTS:-16384}" --shapes "${AB_SHAPES:-QwQ-32B,Qwen3-8B}" \
      --workers "${AB_WORKERS:-1,2,4,8}" 2>&1 | grep RESULT | sed "s/^/$v /" >>"$L"
  done
  echo "round $r done"
done
python3 - "$L" <<'PY'
import collections, re, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    v, rest = line.split(" ", 1)
    kv = dict(re.findall(r"(\w+)=(\S+)", rest))
    rows[(kv["model"], int(kv["context"]), int(kv["W"]), v)].append(float(kv["us"]))
names = []
for k in rows:
    if k[3] not in names:
        names.append(k[3])
print("| shape | ctx | W | " + " | ".join(names) + " |")
print("|---|---:|---:|" + "---:|" * len(names))
for m, c, w in sorted({k[:3] for k in rows}):
    base = statistics.median(rows.get((m, c, w, "default"), [float("nan")]))
    cells = []
    for v in names:
        x = rows.get((m, c, w, v))
        cells.append(f"{statistics.median(x):.1f} ({statistics.median(x) / base:.3f})" if x else "")
    print(f"| {m} | {c} | {w} | " + " | ".join(cells) + " |")
PY
