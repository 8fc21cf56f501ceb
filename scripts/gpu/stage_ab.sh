#!/usr/bin/env bash
# Stages one device A/B call (scripts/gpu/ab_cuda.sh) from a helper's worktree:
#   scripts/gpu/stage_ab.sh NAME [MAIN_DIR]
# copies this tree (the files git sees: sources, scripts, test fixtures; no builds) to
# MAIN_DIR/.gpu/NAME/src and main's committed native/ (HEAD of MAIN_DIR) to MAIN_DIR/.gpu/NAME-base,
# then prints the device command. The `run` call carries .gpu/NAME and .gpu/NAME-base.
set -eu
NAME=${1:?usage: scripts/gpu/stage_ab.sh NAME [MAIN_DIR]}
MAIN=${2:-/work/main}
G=$MAIN/.gpu
mkdir -p "$G/$NAME/src" "$G/$NAME-base"
rm -rf "${G:?}/$NAME/src" && mkdir -p "$G/$NAME/src"
# What git sees (tracked and untracked, not ignored) of what the GPU run needs: no builds.
git ls-files -z -co --exclude-standard -- native scripts bench test/fixtures | tar --null -T - -cf - | tar -x -C "$G/$NAME/src"
rm -rf "${G:?}/$NAME-base/native"
git -C "$MAIN" archive HEAD native | tar -x -C "$G/$NAME-base"
echo "new: $(git rev-parse --short HEAD) ($(git status --porcelain | wc -l) uncommitted), base: main $(git -C "$MAIN" rev-parse --short HEAD)"
du -sh "$G/$NAME" "$G/$NAME-base"
cat <<CMD
device command (from the repository root of the copy):
cd .gpu/$NAME/src && AB_ATTENTION=1 AB_PDL=0 AB_ORDER=baseline-first AB_BASELINE_MIN=150 \\
  AB_VARIANTS="HW_GEMM_TILES=2 HW_GEMM_TILES=1 HW_ATTN_MERGE_KERNEL=1" \\
  AB_TEST_VARIANTS=HW_ATTN_MERGE_KERNEL=1 OUT=\$OUT/ab timeout 460 scripts/gpu/ab_cuda.sh \\
  \$(cd ../../$NAME-base && pwd) 445; tar -czf \$OUT/all.tgz -C \$OUT ab && cp \$OUT/ab/summary.txt \$OUT/ && rm -rf \$OUT/ab
CMD
