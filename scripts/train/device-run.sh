#!/bin/bash
# The built-in model's training run on the GPU machine (one call): data from 16 node processes,
# then scripts/train/train.py. Run from the repository root with the staging folder S holding
# make-train-data.js (node dist/cli/make-train-data.js's bundle), train.py and tok/ (the tokenizer).
set -eo pipefail
S=${S:-.gpu/model-train}
OUT=${OUT:-/tmp/out}
xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node
mkdir -p /tmp/data "$OUT"
t0=$(date +%s)
for i in $(seq 0 $(( ${PROCS:-16} - 1 ))); do
  /tmp/node "$S/make-train-data.js" --tokenizer "$S/tok" --out /tmp/data/s$i --from $((i * ${RUNS_PER_PROC:-5000})) --count ${RUNS_PER_PROC:-5000} 2>>"$OUT/data_log.txt" &
done
/tmp/node "$S/make-train-data.js" --tokenizer "$S/tok" --out /tmp/data/held --from 1000000000 --count 300 2>>"$OUT/data_log.txt" &
wait
echo "data: $(( $(date +%s) - t0 )) s"; tail -3 "$OUT/data_log.txt"
PYTHONUNBUFFERED=1 python3 "$S/train.py" --data /tmp/data/s* --heldout /tmp/data/held --tokenizer "$S/tok" \
  --out "$OUT/model" --log "$OUT/train_log.txt" --minutes ${MINUTES:-4} ${TRAIN_ARGS:-}
