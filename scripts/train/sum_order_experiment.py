#!/usr/bin/env python3
"""CPU experiment: does a small model of the built-in model's architecture learn the combining
worker's multi-term sums better when they are written units first (convention v3,
"138+77+60+45=023=\\boxed{320}") than in the normal order (v2, "138+77+60+45=\\boxed{320}")?

Results and the exact commands: scripts/train/sum_order_experiment.md. In short (4 layers, hidden
128, 3,500 steps of 128 sums, same sums for both): v2 learns 3-/4-term sums steadily (0.92 / 0.72
all right); v3 stays at chance on the units digit (the first after "=") for thousands of steps,
then learns it abruptly and fast (one seed 3-term 0.89 at 3,500, 4-term 0.91 after 2,500 more).

Data: drill shards of `make-train-data --count 1 --sum-drills N --views cache --convention v2|v3`
(extension/tasks/sumDrills.ts). The shard's first record (the one ordinary run) is dropped;
each drill run is cut into its sums, and each sum becomes one short sequence (its step header,
the terms, the trained tokens): a sum does not depend on the sums before it, and short
sequences train ~10x faster on one core than 900-token runs. Only the first --sums-per-run
sums of each run are used: v3 runs hold fewer sums (its sums are longer) and the drills of a
seed draw the same sums in both conventions, so both conventions train on the very same sums,
in the same order, for the same number of steps under the same schedule.

Trained tokens are exactly the shard's (wt > 0): v2 the boxed digits and the closing "}.\\n\\n";
v3 (3+ terms) everything after the terms' "=" (digits units first, "=\\boxed{", the boxed digits,
the closing token); 2-term sums are the same text in both (a control). A sum counts as right
when every trained token is the argmax (teacher-forced); a greedy check of the boxed number on
held-out sums runs at the end.

Runs on torch 1.13 CPU (Debian's python3-torch): the model is train.py's own (Model/Layer), with
a plain attention in place of F.scaled_dot_product_attention (torch 2.0) when it is missing.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402  (the GPU trainer: its shard loader and model)

if not hasattr(F, "scaled_dot_product_attention"):
    def _plain_attention(q, k, v, attn_mask):
        s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        return torch.softmax(s.masked_fill(~attn_mask, float("-inf")), -1) @ v
    F.scaled_dot_product_attention = _plain_attention


def token_texts(tokenizer_dir):
    """id -> text (byte-level BPE spellings: only '+', digits and '}' are looked at)."""
    tok = json.load(open(os.path.join(tokenizer_dir, "tokenizer.json")))
    inv = {v: k for k, v in tok["model"]["vocab"].items()}
    for t in tok["added_tokens"]:
        inv[t["id"]] = t["content"]
    ntok = max(inv) + 1
    return inv, (ntok + 63) // 64 * 64


def drill_sums(shard, sums_per_run, texts):
    """Each drill sum as (ids, trained-mask, terms): header + terms + its trained tokens (shard order)."""
    out = []
    for r in train.load_cache_shards([shard])[1:]:  # record 0: the one ordinary run
        assert r["offB"].shape[1] == 1, "a drill run is one block"
        ids, w = r["ids"].astype(np.int64), r["wt"] > 0
        start, a, n = 0, None, 0
        for q in range(len(ids)):
            if w[q] and a is None:
                a = q
            if a is not None and (q + 1 == len(ids) or not w[q + 1]):
                seq = ids[start:q + 2]  # query q predicts ids[q + 1], the closing "}.\n\n"
                mask = np.zeros(len(seq), bool)
                mask[a - start:q - start + 1] = True
                terms = sum(texts[int(t)] == "+" for t in ids[start:a + 1]) + 1
                out.append((seq, mask, terms))
                start, a, n = q + 2, None, n + 1
                if n == sums_per_run:
                    break
        assert n == sums_per_run, f"{shard}: a run with only {n} sums (lower --sums-per-run)"
    return out


def collate(sums, idx):
    L = max(len(sums[i][0]) for i in idx)
    ids = np.zeros((len(idx), L), np.int64)
    mask = np.zeros((len(idx), L), bool)
    valid = np.zeros((len(idx), L), bool)
    for r, i in enumerate(idx):
        s, m, _ = sums[i]
        ids[r, :len(s)], mask[r, :len(s)], valid[r, :len(s)] = s, m, True
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(valid)


def attn_mask(valid):
    L = valid.shape[1]
    m = torch.ones(L, L, dtype=torch.bool).tril()[None] & valid[:, None, :]
    return (m | torch.eye(L, dtype=torch.bool)[None])[:, None]


def loss_and_hits(model, ids, mask, valid):
    logits = model(ids, attn_mask(valid))[:, :-1]
    tgt, m = ids[:, 1:], mask[:, :-1]
    lp = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="none").view_as(tgt)
    loss = (lp * m).sum() / m.sum()
    hit = logits.argmax(-1) == tgt
    return loss, hit, m


@torch.no_grad()
def evaluate(model, held, batch, brace):
    """Per term count: sums with every trained token right (teacher-forced argmax), and token accuracy.
    Also split at the box's "{": the trained tokens before it (v3's units-first digits and "=\\boxed{";
    none in v2) and from it on (the boxed digits and the closing token), each all right."""
    model.eval()
    right, count, tok_ok, tok_n = {}, {}, 0, 0
    for b in range(0, len(held), batch):
        idx = list(range(b, min(b + batch, len(held))))
        ids, mask, valid = collate(held, idx)
        _, hit, m = loss_and_hits(model, ids, mask, valid)
        # Queries up to the one predicting "{" are the part before the box (the target ids[q + 1]).
        before = (ids[:, 1:] == brace).long().flip(1).cumsum(1).flip(1) > 0
        parts = [(hit | ~m).all(1), (hit | ~(m & before)).all(1), (hit | ~(m & ~before)).all(1)]
        tok_ok += (hit & m).sum().item()
        tok_n += m.sum().item()
        for r, i in enumerate(idx):
            k = held[i][2]
            got = right.setdefault(k, [0, 0, 0])
            for j in range(3):
                got[j] += bool(parts[j][r])
            count[k] = count.get(k, 0) + 1
    model.train()
    return {k: (right[k][0] / count[k], count[k]) for k in sorted(count)}, tok_ok / max(tok_n, 1), \
        {k: (right[k][1] / count[k], right[k][2] / count[k]) for k in sorted(count)}


@torch.no_grad()
def greedy_boxed(model, held, texts, n):
    """Greedy decoding from the first trained token on: the fraction of sums whose boxed number is right.
    The untrained tokens before it are fed (v2: "=\\boxed{"; v3: the terms' "=")."""
    model.eval()
    right, count, shown = {}, {}, 0
    for s, m, terms in held[:n]:
        a = int(np.flatnonzero(m)[0])
        seq = list(s[:a + 1])
        while len(seq) < len(s) + 4 and "}" not in texts[seq[-1]]:
            x = torch.tensor([seq])
            seq.append(int(model(x, attn_mask(torch.ones_like(x, dtype=torch.bool)))[0, -1].argmax()))
        text = "".join(texts[t] for t in seq)
        want = "".join(texts[int(t)] for t in s)
        boxed = lambda t: t.split("{", 1)[1].split("}", 1)[0] if "{" in t and "}" in t.split("{", 1)[1] else None
        k = min(terms, 4)
        right[k] = right.get(k, 0) + (boxed(text) == boxed(want))
        if boxed(text) != boxed(want) and terms >= 3 and shown < 8:  # a few examples of what goes wrong
            shown += 1
            print(f"  greedy wrong: {text!r} (want {want!r})".replace("\u0120", " ").replace("\u010a", "\\n"))
        count[k] = count.get(k, 0) + 1
    model.train()
    return {k: (right[k] / count[k], count[k]) for k in sorted(count)}


@torch.no_grad()
def position_accuracy(model, held, batch):
    """Per term count and number of trained tokens (the result's digits): teacher-forced accuracy of
    the j-th trained token of a sum (v3: the units-first digits come first), to see which digit fails."""
    model.eval()
    ok, n = {}, {}
    for b in range(0, len(held), batch):
        idx = list(range(b, min(b + batch, len(held))))
        ids, mask, valid = collate(held, idx)
        _, hit, m = loss_and_hits(model, ids, mask, valid)
        for r, i in enumerate(idx):
            h = hit[r][m[r]].tolist()
            key = (held[i][2], len(h))
            ok[key] = [x + y for x, y in zip(ok.get(key, [0] * len(h)), h)]
            n[key] = n.get(key, 0) + 1
    model.train()
    for k, L in sorted(n):
        if n[k, L] >= 50:
            print(f"  {k}-term sums with {L} trained tokens (n={n[k, L]}), accuracy of each: " + " ".join(f"{x / n[k, L]:.3f}" for x in ok[k, L]), flush=True)


def fmt(res):
    return "  ".join(f"{k}-term {acc:.3f} (n={n})" for k, (acc, n) in res.items())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True, help="drill shard (make-train-data --sum-drills N --views cache)")
    ap.add_argument("--heldout", required=True, help="drill shard of disjoint seeds")
    ap.add_argument("--tokenizer", default="models/hogwild-tiny")
    ap.add_argument("--sums-per-run", type=int, default=32)
    ap.add_argument("--heldout-sums", type=int, default=4000)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--batch", type=int, default=128, help="sums per step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=200, help="steps")
    ap.add_argument("--greedy", type=int, default=400, help="held-out sums decoded greedily at the end")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--save", default=None, help="write the final model's state dict to FILE")
    ap.add_argument("--load", default=None, help="start from a --save FILE (with --steps 0: evaluate it)")
    for k in ("layers", "hidden", "heads", "kv_heads", "head_dim", "inter"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=train.CFG[k])
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = dict(train.CFG, **{k: getattr(a, k) for k in ("layers", "hidden", "heads", "kv_heads", "head_dim", "inter")})
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    texts, vocab = token_texts(a.tokenizer)
    sums = drill_sums(a.train, a.sums_per_run, texts)
    held = drill_sums(a.heldout, a.sums_per_run, texts)[:a.heldout_sums]
    brace = next(i for i, t in texts.items() if t == "{")
    model = train.Model(cfg, vocab)
    print(f"{len(sums)} training sums ({sum(len(s[0]) for s in sums)} tokens), {len(held)} held out; "
          f"parameters {sum(p.numel() for p in model.parameters())} (layers {cfg['layers']}, hidden {cfg['hidden']}, "
          f"heads {cfg['heads']}/{cfg['kv_heads']} x {cfg['head_dim']}, inter {cfg['inter']}); {a.steps} steps of {a.batch} sums", flush=True)
    if a.load:
        model.load_state_dict(torch.load(a.load)["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    rng = random.Random(a.seed)
    order = []
    t0, tokens, ema = time.time(), 0, None
    for step in range(a.steps + 1):
        if step % a.eval_every == 0 or step == a.steps:
            te = time.time()
            res, tacc, split = evaluate(model, held, 256, brace)
            print(f"eval step {step} t {te - t0:.0f}s train-tokens {tokens} tok/s {tokens / max(te - t0, 1e-9):.0f} loss {ema if ema is None else round(ema, 4)} "
                  f"token-acc {tacc:.4f} | all-right {fmt(res)} | before-box/box right "
                  + "  ".join(f"{k}-term {x:.3f}/{y:.3f}" for k, (x, y) in split.items()) + f" | eval {time.time() - te:.0f}s", flush=True)
            t0 += time.time() - te  # the clock (tokens/s) counts training only
        if step == a.steps:
            break
        if len(order) < a.batch:
            order += rng.sample(range(len(sums)), len(sums))  # epochs of shuffled sums
        idx, order = order[:a.batch], order[a.batch:]
        frac = step / a.steps
        lr = train.learning_rate(a.lr, step, a.warmup, frac)  # train.py's schedule, by steps
        for g in opt.param_groups:
            g["lr"] = lr
        ids, mask, valid = collate(sums, idx)
        loss, _, _ = loss_and_hits(model, ids, mask, valid)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int(valid.sum())
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
    position_accuracy(model, held, 256)
    if a.save:
        torch.save({"cfg": cfg, "model": model.state_dict()}, a.save)
    if a.greedy:
        te = time.time()
        print(f"greedy boxed number right: {fmt(greedy_boxed(model, held, texts, a.greedy))} ({time.time() - te:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
