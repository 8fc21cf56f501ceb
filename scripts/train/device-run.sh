#!/bin/bash
# The built-in model's whole training run on the GPU machine, in one call of about 8-9 minutes:
# tokenizer corpus -> BPE tokenizer -> training data (16 node processes) -> train.py (seeded,
# time-boxed, held-out evaluation, export, transformers check) -> checksums.json, sha256 printed.
# Run from the repository root. The staging folder S holds (scripts/train/stage.sh fills it):
# make-train-data.js (the bundle of extension/cli/make-train-data.ts), make_tokenizer.py,
# train.py, write-checksums.mjs; .gpu/node.xz is an xz'd node binary (the GPU machine has none).
# Everything lands in $OUT: model/ (the Hugging Face folder, checksums.json included), the logs.
#   CONVENTION=v2|v1 (default v2)  MINUTES=training minutes (default 6)
#   PROCS, RUNS_PER_PROC: data processes and simulated runs each (default 16 x 5000); HELD_RUNS (300)
#   TOKENIZER=DIR: use this tokenizer instead of training one (e.g. the shipped model's, with v1)
#   TRAIN_ARGS: more train.py flags; WORK: scratch folder (default /tmp/hw-train)
set -eo pipefail
S=${S:-.gpu/model-train}
OUT=${OUT:-/tmp/out}
CONVENTION=${CONVENTION:-v2}
PROCS=${PROCS:-16}
RUNS=${RUNS_PER_PROC:-5000}
T=${WORK:-/tmp/hw-train}  # scratch: node, corpus, tokenizer, data
rm -rf "$T/data" && mkdir -p "$T/data" "$OUT"
xz -dc .gpu/node.xz > "$T/node" && chmod +x "$T/node"
t0=$(date +%s)
if [ -n "$TOKENIZER" ]; then
  TOK=$TOKENIZER
else
  TOK=$T/tok
  "$T/node" "$S/make-train-data.js" --corpus $T/corpus.txt --count 2000 --convention "$CONVENTION"
  python3 "$S/make_tokenizer.py" $T/corpus.txt "$TOK" | tee "$OUT/tokenizer_log.txt"
fi
pids=()
for i in $(seq 0 $((PROCS - 1))); do
  "$T/node" "$S/make-train-data.js" --tokenizer "$TOK" --out $T/data/s$i --from $((i * RUNS)) --count "$RUNS" --convention "$CONVENTION" 2>>"$OUT/data_log.txt" &
  pids+=($!)
done
# Held-out seeds (1,000,000,000 up) for train.py's evaluation only: never trained on.
"$T/node" "$S/make-train-data.js" --tokenizer "$TOK" --out $T/data/held --from 1000000000 --count "${HELD_RUNS:-300}" --convention "$CONVENTION" 2>>"$OUT/data_log.txt" &
pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done  # a failed data process stops the run (set -e)
echo "tokenizer + data: $(( $(date +%s) - t0 )) s"; tail -3 "$OUT/data_log.txt"
PYTHONUNBUFFERED=1 python3 "$S/train.py" --data $T/data/s* --heldout $T/data/held --tokenizer "$TOK" \
  --out "$OUT/model" --log "$OUT/train_log.txt" --minutes "${MINUTES:-6}" ${TRAIN_ARGS:-}
cp "$OUT/train_log.txt" "$OUT/model/train_log_$CONVENTION.txt"
"$T/node" "$S/write-checksums.mjs" "$OUT/model"
(cd "$OUT/model" && sha256sum config.json model.safetensors tokenizer.json tokenizer_config.json && ls -l)
echo "total: $(( $(date +%s) - t0 )) s"
