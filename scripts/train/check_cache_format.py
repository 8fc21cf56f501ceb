#!/usr/bin/env python3
"""train.py's batched cache-format forward (forward_cache: one rotation of each query per block,
all runs of a batch at once) against cache_forward.py's plain one (each forward's view gathered
and rotated to its positions, one forward at a time), on runs of a cache shard and a model folder.
Prints the largest logit difference; exits 1 above 1e-3.

usage: check_cache_format.py MODEL_DIR SHARD_DIR [RUNS]
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cache_forward as CF  # noqa: E402

T = CF.T


def main():
    m = CF.load_model(sys.argv[1])
    runs = T.load_cache_shards([sys.argv[2]])[: int(sys.argv[3]) if len(sys.argv) > 3 else 4]
    b = T.cache_collate(runs, list(range(len(runs))), "cpu")
    with torch.no_grad():
        batched = T.forward_cache(m, b)
    worst = 0.0
    for k, r in enumerate(runs):
        n = len(r["ids"])
        starts = {}
        for u in range(n):
            starts.setdefault(int(r["blk"][u]), u)
        groups = []
        for f in range(r["offB"].shape[0]):
            view = []
            for blk in np.argsort(r["offB"][f], kind="stable"):
                ln = int(r["lenB"][f, blk])
                if ln:
                    view += list(range(starts[int(blk)], starts[int(blk)] + ln))
            queries = [u for u in range(n) if int(r["fwd"][u]) == f]
            groups.append((view, queries))
        plain = CF.cache_logits(m, [int(x) for x in r["ids"]], groups)
        d = (plain - batched[k, :n]).abs().max().item()
        worst = max(worst, d)
        print(f"run {k}: {n} entries, {len(groups)} forwards, max |logit difference| {d:.2e}")
    print(f"largest difference {worst:.2e}")
    sys.exit(0 if worst < 1e-3 else 1)


if __name__ == "__main__":
    main()
