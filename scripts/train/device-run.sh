#!/bin/bash
# The built-in model's whole training run on the GPU machine, in one call of about 8-9 minutes:
# tokenizer corpus -> BPE tokenizer -> training data (16 node processes) -> train.py (seeded,
# time-boxed, held-out evaluation, export, transformers check) -> checksums.json, sha256 printed.
# Run from the repository root. The staging folder S holds (scripts/train/stage.sh fills it):
# make-train-data.js (the bundle of extension/cli/make-train-data.ts), make_tokenizer.py,
# train.py, write-checksums.mjs; .gpu/node.xz is an xz'd node binary (the GPU machine has none).
# Everything lands in $OUT: model.tar.part-* (the Hugging Face folder model/, checksums.json
# included, tarred and split for the trip back), the logs.
#   CONVENTION=v3|v2|v1 (default v2; the shipped model is v3)  VIEWS=cache|exact|legacy (default: cache with v2, legacy with v1;
#   cache is the engine's own cache format, the one that trains a model that works in the engine)
#   STRETCH=N: exact views cut at most N trained tokens per sequence (default 0: only where the view changes shape)
#   MINUTES=training minutes of this call (default 6)
#   MODEL_ARGS: train.py's model shape (default "--layers 12": 9.7M parameters, 19.3 MB in bf16)
#   PROCS, RUNS_PER_PROC: data processes and simulated runs each (default 16 x 5000); HELD_RUNS (300)
#   TOKENIZER=DIR: use this tokenizer instead of training one (e.g. models/hogwild-tiny's)
#   SUM_DRILLS=N: N runs of addition drills per data process (make-train-data --sum-drills; default 0)
#   MIX=A,B,C,D: shares of training runs with 1, 2, 3, 4 workers (make-train-data's --workers-mix; default 25,35,10,30)
#   DATA_FROM=N: the first training seed (default 0): a later call gets fresh runs with N past the last one's
#   TRAIN_ARGS: more train.py flags; WORK: scratch folder (default /tmp/hw-train)
# A training run longer than one device call (10 minutes): SCHEDULE_MINUTES=total training
# minutes; the first call makes the data and trains MINUTES; each next call with RESUME=1 (on
# the still-warm machine: the data and $WORK/state.pt must still be there) trains MINUTES more
# from the saved state. Every call exports the model trained so far.
set -eo pipefail
S=${S:-.gpu/model-train}
OUT=${OUT:-/tmp/out}
CONVENTION=${CONVENTION:-v2}
PROCS=${PROCS:-16}
RUNS=${RUNS_PER_PROC:-5000}
T=${WORK:-/tmp/hw-train}  # scratch: node, corpus, tokenizer, data, training state
VIEWS=${VIEWS:-$([ "$CONVENTION" = v1 ] && echo legacy || echo cache)}
SCHEDULE=${SCHEDULE_MINUTES:-${MINUTES:-6}}
t0=$(date +%s)
mkdir -p "$OUT"
if [ -n "$RESUME" ]; then
  [ -f "$T/state.pt" ] && [ -d "$T/data/held" ] || { echo "RESUME=1: no $T/state.pt or data (the machine went cold): start again without RESUME" >&2; exit 2; }
  TOK=${TOKENIZER:-$T/tok}
else
rm -rf "$T/data" "$T/state.pt" && mkdir -p "$T/data"
xz -dc .gpu/node.xz > "$T/node" && chmod +x "$T/node"
if [ -n "$TOKENIZER" ]; then
  TOK=$TOKENIZER
else
  TOK=$T/tok
  "$T/node" "$S/make-train-data.js" --corpus $T/corpus.txt --count 2000 --convention "$CONVENTION"
  python3 "$S/make_tokenizer.py" $T/corpus.txt "$TOK" | tee "$OUT/tokenizer_log.txt"
fi
pids=()
for i in $(seq 0 $((PROCS - 1))); do
  "$T/node" "$S/make-train-data.js" --tokenizer "$TOK" --out $T/data/s$i --from $((${DATA_FROM:-0} + i * RUNS)) --count "$RUNS" ${MIX:+--workers-mix "$MIX"} ${SUM_DRILLS:+--sum-drills "$SUM_DRILLS"} --convention "$CONVENTION" --views "$VIEWS" --max-stretch "${STRETCH:-0}" 2>>"$OUT/data_log.txt" &
  pids+=($!)
done
# Held-out seeds (1,000,000,000 up) for train.py's evaluation only: never trained on.
"$T/node" "$S/make-train-data.js" --tokenizer "$TOK" --out $T/data/held --from 1000000000 --count "${HELD_RUNS:-300}" --convention "$CONVENTION" --views "$VIEWS" --max-stretch "${STRETCH:-0}" 2>>"$OUT/data_log.txt" &
pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done  # a failed data process stops the run (set -e)
echo "tokenizer + data: $(( $(date +%s) - t0 )) s"; tail -3 "$OUT/data_log.txt"
fi
PYTHONUNBUFFERED=1 python3 "$S/train.py" --data $T/data/s* --heldout $T/data/held --tokenizer "$TOK" \
  --out "$OUT/model" --log "$OUT/train_log.txt" --minutes "${MINUTES:-6}" --schedule-minutes "$SCHEDULE" \
  --state "$T/state.pt" ${MODEL_ARGS:---layers 12} ${TRAIN_ARGS:-}
# The log of every call of this run, in order (a resumed call appends).
cat "$OUT/train_log.txt" >> "$T/train_log_all.txt" 2>/dev/null || true
[ -n "$RESUME" ] || cp "$OUT/train_log.txt" "$T/train_log_all.txt"
cp "$T/train_log_all.txt" "$OUT/model/train_log_$CONVENTION.txt"
"$T/node" "$S/write-checksums.mjs" "$OUT/model"
(cd "$OUT/model" && sha256sum config.json model.safetensors tokenizer.json tokenizer_config.json && ls -l)
# The device returns at most 8 files of at most 16 MiB: the model folder travels as one tar in
# 8 MiB pieces (here: cat model.tar.part-* | tar -x).
tar -cf "$T/model.tar" -C "$OUT" model && rm -rf "$OUT/model" "$OUT/tokenizer_log.txt"
split -b 8M "$T/model.tar" "$OUT/model.tar.part-" && ls -l "$OUT"
echo "total: $(( $(date +%s) - t0 )) s"
