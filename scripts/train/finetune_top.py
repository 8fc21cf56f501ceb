#!/usr/bin/env python3
"""CPU fine-tune of the top layers of the built-in model on each step's first written token
(the claim), the rest frozen: the lower layers' outputs are computed once and cached.
Used when no GPU time is left; same data format and masks as train.py.

usage: finetune_top.py --model DIR --data SHARD --heldout SHARD --out FILE [--top 2] [--minutes 15]
"""
import argparse, os, random, sys, time
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import train as T  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--top", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--decision-weight", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    torch.set_num_threads(2)
    sd = load_file(os.path.join(a.model, "model.safetensors"))
    vocab = sd["model.embed_tokens.weight"].shape[0]
    m = T.Model(T.CFG, vocab)
    m.load_state_dict({k.replace("model.", "", 1).replace("self_attn.", "").replace("mlp.", ""): v.float() for k, v in sd.items()})
    for p in m.parameters():
        p.requires_grad_(False)
    top = m.layers[-a.top:]
    for p in list(top.parameters()) + list(m.norm.parameters()):
        p.requires_grad_(True)
    nlow = len(m.layers) - a.top

    def prep(seqs):
        out = []
        for ids, vis, loss in seqs:
            ids_t = torch.tensor(ids.astype(np.int64))[None]
            vis_t = torch.tensor(vis.astype(np.int64))[None]
            mask = T.attention_mask(vis_t, torch.ones_like(ids_t, dtype=torch.bool))
            L = ids_t.shape[1]
            f = torch.outer(torch.arange(L).float(), m.inv_freq)
            e = torch.cat([f, f], -1)
            cos, sin = e.cos()[None, None], e.sin()[None, None]
            with torch.no_grad():
                x = m.embed_tokens(ids_t)
                for layer in m.layers[:nlow]:
                    x = layer(x, cos, sin, mask)
            l = torch.tensor(loss.astype(np.float32))[None]
            first = ((l[:, 1:] > 0) & (l[:, :-1] == 0)).float()
            out.append((x.to(torch.bfloat16), ids_t, mask, cos, sin, l, first))
        return out

    def top_logits(x, mask, cos, sin):
        x = x.float()
        for layer in top:
            x = layer(x, cos, sin, mask)
        return m.norm(x) @ m.embed_tokens.weight.t()

    def claim_acc(items):
        ok = n = 0
        with torch.no_grad():
            for x, ids, mask, cos, sin, l, first in items:
                pred = top_logits(x, mask, cos, sin)[:, :-1].argmax(-1)
                ok += ((pred == ids[:, 1:]).float() * first).sum().item()
                n += first.sum().item()
        return ok / max(n, 1)

    t0 = time.time()
    held = prep(T.load_shards([a.heldout]))
    train = prep(T.load_shards([a.data]))
    print(f"cached {len(train)} + {len(held)} sequences in {time.time() - t0:.0f}s; held-out claim accuracy before {claim_acc(held):.4f}", flush=True)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=a.lr, weight_decay=0.0)
    t1 = time.time()
    step = 0
    ema = None
    while time.time() - t1 < a.minutes * 60:
        random.shuffle(train)
        for x, ids, mask, cos, sin, l, first in train:
            if time.time() - t1 >= a.minutes * 60:
                break
            logits = top_logits(x, mask, cos, sin)
            w = l[:, 1:] * (1 + (a.decision_weight - 1) * first)
            lp = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1), reduction="none").view_as(w)
            loss = (lp * w).sum() / w.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
            if step % 200 == 0:
                print(f"step {step} t {time.time() - t1:.0f}s loss {ema:.4f}", flush=True)
        print(f"epoch done, step {step}: held-out claim accuracy {claim_acc(held):.4f}", flush=True)
    out = T.hf_state_dict(m)
    save_file(out, a.out, metadata={"format": "pt"})
    print(f"wrote {a.out} after {step} steps; held-out claim accuracy {claim_acc(held):.4f}", flush=True)


if __name__ == "__main__":
    main()
