#!/bin/bash
# Fills the staging folder for scripts/train/device-run.sh (run on this machine, from the
# repository root of a checkout with node_modules): the make-train-data bundle, the Python
# scripts, the checksum writer, and .gpu/node.xz (this machine's node, xz'd) beside it.
#   scripts/train/stage.sh DEST   (default /work/main/.gpu/model-train; DEST/.. gets node.xz)
set -eo pipefail
DEST=${1:-/work/main/.gpu/model-train}
node scripts/build.mjs --quiet
mkdir -p "$DEST"
cp dist/cli/make-train-data.js scripts/train/make_tokenizer.py scripts/train/train.py \
  scripts/train/write-checksums.mjs scripts/train/device-run.sh "$DEST/"
NODE_XZ="$(dirname "$DEST")/node.xz"
[ -f "$NODE_XZ" ] || xz -9 -T2 -c "$(command -v node)" > "$NODE_XZ"
# The bundle must run on its own: a short corpus proves it before a device call is spent.
node "$DEST/make-train-data.js" --corpus /tmp/stage-check.txt --count 5
node "$DEST/make-train-data.js" --tokenizer models/hogwild-tiny --out /tmp/stage-check-data --count 5 --views exact
ls -l "$DEST" "$NODE_XZ"
