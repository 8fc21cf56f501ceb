#!/usr/bin/env python3
"""Trains the built-in model (a small Qwen3-architecture checkpoint) on simulated Hogwild runs.

Data: shards written by `node dist/cli/make-train-data.js` (ids.u16, vis.i16, loss.u8,
offsets.u32). Each sequence is one worker's view; `vis` is the engine step from which each
token was in the cache for that worker. A query may attend to a key when the key comes
earlier in the view AND vis[key] <= vis[query]: so every token of the own step is trained on
what the worker saw when it wrote it (see extension/tasks/trainViews.ts).

Shards from `make-train-data --views cache` (a seg.u16 file present) hold whole runs in the
engine's cache format instead (extension/tasks/cacheRuns.ts): every cache entry once, computed
in the view of the forward that wrote it, which is what the engine computes; a model trained
on views laid out as one text recomputes the history in a context the engine never used, and
fails in the engine (scripts/train/cache_forward.py). See load_cache_shards.

`loss` is 1 for a target, 2 for a target that is a step's first written token (its claim,
weighed up by --decision-weight); shards with 1s only (the 'legacy' views) get the 2 on each
run of targets' first token, as before.

Seeded, time-boxed (--minutes), logs the loss curve, prints a held-out evaluation at the end,
exports an ordinary Hugging Face folder (config.json, model.safetensors) and checks that
transformers' Qwen3ForCausalLM gives the same logits as this script's model.

A run longer than one device call (10 minutes) is split over calls with --state FILE: each call
trains --minutes, saves model, optimiser and clock to FILE and exports; the next call with the
same FILE resumes; the learning rate follows one schedule of --schedule-minutes over them all.
Where the state cannot travel (the machine went cold), the next call starts --init from the last
export with --schedule-start-minutes (fresh optimiser moments, the same cosine).

usage: train.py --data SHARD [SHARD...] --heldout SHARD --tokenizer DIR --out DIR [--minutes 4.5]
                [--layers 8 --hidden 256 --heads 4 --kv-heads 2 --inter 768]
                [--schedule-minutes M --state FILE]
"""
import argparse
import json
import math
import os
import random
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CFG = dict(hidden=256, layers=8, heads=4, kv_heads=2, head_dim=64, inter=768, rope_theta=10000.0, eps=1e-6, max_pos=2048)
MAX_EXPORT_BYTES = 25_000_000  # committed model files: 25 MB at most (issue 11), bf16 weights


def learning_rate(base, step, warmup, frac):
    """Linear warmup over `warmup` steps, then a cosine from `base` down to 0.1 x `base` as the
    schedule's fraction `frac` (0..1) runs out."""
    return base * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def export_bytes(c, vocab):
    """model.safetensors' size in bf16 (tied embeddings), header aside."""
    attn = c["hidden"] * c["head_dim"] * (2 * c["heads"] + 2 * c["kv_heads"]) + 2 * c["head_dim"]
    layer = attn + 3 * c["hidden"] * c["inter"] + 2 * c["hidden"]
    return 2 * (c["layers"] * layer + vocab * c["hidden"] + c["hidden"])


def load_shards(dirs):
    seqs = []
    for d in dirs:
        ids = np.fromfile(os.path.join(d, "ids.u16"), dtype=np.uint16)
        vis = np.fromfile(os.path.join(d, "vis.i16"), dtype=np.int16)
        loss = np.fromfile(os.path.join(d, "loss.u8"), dtype=np.uint8)
        off = np.fromfile(os.path.join(d, "offsets.u32"), dtype=np.uint32)
        if loss.max(initial=0) < 2:
            # 'legacy' views: the first target of each run of targets is the step's claim.
            loss = loss.copy()
            first = np.flatnonzero((loss[1:] > 0) & (loss[:-1] == 0)) + 1
            loss[first] = 2
        for a, b in zip(off[:-1], off[1:]):
            seqs.append((ids[a:b], vis[a:b], loss[a:b]))
    return seqs


def pack_by_length(lengths, max_tokens, rng):
    """Batches of indices into `lengths` (a dict: index -> length) of similar lengths, each padded to at most max_tokens, shuffled."""
    order = sorted(lengths, key=lambda i: (lengths[i], rng.random()))
    out, cur, cur_len = [], [], 0
    for i in order:
        n = lengths[i]
        L = max(cur_len, n)
        if cur and L * (len(cur) + 1) > max_tokens:
            out.append(cur)
            cur, L = [], n
        cur.append(i)
        cur_len = L
    if cur:
        out.append(cur)
    rng.shuffle(out)
    return out


def batches(seqs, max_tokens, rng, max_len):
    return pack_by_length({i: min(len(q[0]), max_len) for i, q in enumerate(seqs)}, max_tokens, rng)


def collate(seqs, idx, device, max_len):
    L = min(max(len(seqs[i][0]) for i in idx), max_len)
    B = len(idx)
    ids = np.zeros((B, L), np.int64)
    vis = np.full((B, L), 32767, np.int64)
    loss = np.zeros((B, L), np.float32)
    valid = np.zeros((B, L), bool)
    for r, i in enumerate(idx):
        a, v, l = seqs[i]
        a, v, l = a[-L:], v[-L:], l[-L:]  # an over-long view keeps its end (the own step)
        n = len(a)
        ids[r, :n], vis[r, :n], loss[r, :n], valid[r, :n] = a, v, l, True
    t = lambda x: torch.from_numpy(x).to(device)
    return t(ids), t(vis), t(loss), t(valid)


def attention_mask(vis, valid):
    L = vis.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=vis.device).tril()
    m = causal[None] & (vis[:, None, :] <= vis[:, :, None]) & valid[:, None, :]
    m |= torch.eye(L, dtype=torch.bool, device=vis.device)[None]  # no empty rows (padding)
    return m[:, None]


# ---- The cache format (extension/tasks/cacheRuns.ts, cacheShard.ts): one record per run, every
# cache entry once. A token's hidden state is computed in the view of the forward that wrote
# it (its own block causal); a key sits at offB[query, block] + its index in its block, so a
# query is rotated once per block (the engine's own trick) and meets each key's in-block
# rotation: the query of token u against block b is rotated by qpos[u] - offB[u, b].

def load_cache_shards(dirs):
    runs = []
    for d in dirs:
        rd = lambda n, t: np.fromfile(os.path.join(d, n), dtype=t)
        ids, blk, bidx, fwd, tgt, wt = rd("ids.u16", np.uint16), rd("blk.u16", np.uint16), rd("bidx.u16", np.uint16), rd("fwd.u16", np.uint16), rd("tgt.u16", np.uint16), rd("wt.u8", np.uint8)
        off, foff, soff, seg = rd("offsets.u32", np.uint32), rd("foff.u32", np.uint32), rd("soff.u32", np.uint32), rd("seg.u16", np.uint16).reshape(-1, 3)
        # Per forward: each block's offset and visible length in its view (0: not in it), all forwards at once.
        nf = len(soff) - 1
        fidx = np.repeat(np.arange(nf), np.diff(soff.astype(np.int64)))
        width = int(seg[:, 0].max()) + 1 if len(seg) else 1
        offA = np.zeros((nf, width), np.int32)
        lenA = np.zeros((nf, width), np.int32)
        offA[fidx, seg[:, 0]] = seg[:, 1]
        lenA[fidx, seg[:, 0]] = seg[:, 2]
        for r in range(len(off) - 1):
            a, b, fa, fb = int(off[r]), int(off[r + 1]), int(foff[r]), int(foff[r + 1])
            nb = int(blk[a:b].max()) + 1
            runs.append(dict(ids=ids[a:b], blk=blk[a:b], bidx=bidx[a:b], fwd=fwd[a:b], tgt=tgt[a:b], wt=wt[a:b], offB=offA[fa:fb, :nb], lenB=lenA[fa:fb, :nb]))
    return runs


def cache_batches(runs, max_tokens, rng, max_len, max_blocks):
    ok = {i: len(r["ids"]) for i, r in enumerate(runs) if len(r["ids"]) <= max_len and r["offB"].shape[1] <= max_blocks}
    return pack_by_length(ok, max_tokens, rng)


def cache_collate(runs, idx, device):
    U = max(len(runs[i]["ids"]) for i in idx)
    B = max(runs[i]["offB"].shape[1] for i in idx)
    R = len(idx)
    ids = np.zeros((R, U), np.int64)
    blk = np.zeros((R, U), np.int64)
    bidx = np.zeros((R, U), np.int64)
    tgt = np.zeros((R, U), np.int64)
    wt = np.zeros((R, U), np.float32)
    valid = np.zeros((R, U), bool)
    offB = np.zeros((R, U, B), np.int64)
    lenB = np.zeros((R, U, B), np.int64)
    for k, i in enumerate(idx):
        r = runs[i]
        n, nb = len(r["ids"]), r["offB"].shape[1]
        ids[k, :n], blk[k, :n], bidx[k, :n], valid[k, :n] = r["ids"], r["blk"], r["bidx"], True
        t = r["tgt"].astype(np.int64)
        tgt[k, :n] = np.where(t == 65535, 0, t)
        wt[k, :n] = r["wt"]
        f = r["fwd"].astype(np.int64)
        offB[k, :n, :nb] = r["offB"][f]
        lenB[k, :n, :nb] = r["lenB"][f]
    T = lambda x: torch.from_numpy(x).to(device)
    return dict(ids=T(ids), blk=T(blk), bidx=T(bidx), tgt=T(tgt), wt=T(wt), valid=T(valid), offB=T(offB), lenB=T(lenB))


def cache_mask(b):
    """[R, 1, U, U]: key j visible to query u (its block in u's view, within the visible length, causal in u's own block)."""
    R, U = b["ids"].shape
    blk_j = b["blk"][:, None, :].expand(R, U, U)
    vis_len = torch.gather(b["lenB"], 2, blk_j)
    bj, bu = b["bidx"][:, None, :], b["bidx"][:, :, None]
    m = (bj < vis_len) & ((blk_j != b["blk"][:, :, None]) | (bj <= bu)) & b["valid"][:, None, :]
    m |= torch.eye(U, dtype=torch.bool, device=m.device)[None]
    return m[:, None]


def rope_angles(inv_freq, pos):
    f = pos.float()[..., None] * inv_freq
    emb = torch.cat([f, f], -1)
    return emb.cos(), emb.sin()


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight.to(x.dtype)


def rope(x, cos, sin):
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], -1)
    return x * cos + rot * sin


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        H, hd = c["hidden"], c["head_dim"]
        self.nh, self.nkv, self.hd = c["heads"], c["kv_heads"], hd
        self.input_layernorm = RMSNorm(H, c["eps"])
        self.q_proj = nn.Linear(H, self.nh * hd, bias=False)
        self.k_proj = nn.Linear(H, self.nkv * hd, bias=False)
        self.v_proj = nn.Linear(H, self.nkv * hd, bias=False)
        self.o_proj = nn.Linear(self.nh * hd, H, bias=False)
        self.q_norm = RMSNorm(hd, c["eps"])
        self.k_norm = RMSNorm(hd, c["eps"])
        self.post_attention_layernorm = RMSNorm(H, c["eps"])
        self.gate_proj = nn.Linear(H, c["inter"], bias=False)
        self.up_proj = nn.Linear(H, c["inter"], bias=False)
        self.down_proj = nn.Linear(c["inter"], H, bias=False)

    def forward(self, x, cos, sin, mask):
        B, L, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_norm(self.q_proj(h).view(B, L, self.nh, self.hd)).transpose(1, 2)
        k = self.k_norm(self.k_proj(h).view(B, L, self.nkv, self.hd)).transpose(1, 2)
        v = self.v_proj(h).view(B, L, self.nkv, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = self.nh // self.nkv
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.o_proj(a.transpose(1, 2).reshape(B, L, -1))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


    def forward_cache(self, x, b, inv_freq, mask):
        """Every cache entry in its writer's view (cache_mask); see load_cache_shards."""
        R, U, _ = x.shape
        B, d = b["offB"].shape[2], self.hd
        h = self.input_layernorm(x)
        q = self.q_norm(self.q_proj(h).view(R, U, self.nh, d))
        k = self.k_norm(self.k_proj(h).view(R, U, self.nkv, d))
        v = self.v_proj(h).view(R, U, self.nkv, d).transpose(1, 2)
        cos, sin = rope_angles(inv_freq, b["bidx"])  # keys: their index in their block
        k = rope(k, cos[:, :, None].to(k.dtype), sin[:, :, None].to(k.dtype))
        qpos = torch.gather(b["offB"], 2, b["blk"][:, :, None])[..., 0] + b["bidx"]
        cos, sin = rope_angles(inv_freq, qpos[:, :, None] - b["offB"])  # [R, U, B, d]
        qb = rope(q[:, :, None], cos[:, :, :, None].to(q.dtype), sin[:, :, :, None].to(q.dtype))  # [R, U, B, H, d]
        qx = qb.permute(0, 3, 1, 2, 4).reshape(R, self.nh, U, B * d)
        onehot = F.one_hot(b["blk"], B).to(k.dtype)  # each key in its block's slot
        kx = (onehot[:, :, :, None, None] * k[:, :, None]).permute(0, 3, 1, 2, 4).reshape(R, self.nkv, U, B * d)
        rep = self.nh // self.nkv
        kx, v = kx.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        s = (qx @ kx.transpose(-1, -2)).float() / math.sqrt(d)
        s = s.masked_fill(~mask, float("-inf"))
        a = torch.softmax(s, -1).to(v.dtype) @ v
        x = x + self.o_proj(a.transpose(1, 2).reshape(R, U, -1))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Model(nn.Module):
    def __init__(self, c, vocab):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(vocab, c["hidden"])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["layers"])])
        self.norm = RMSNorm(c["hidden"], c["eps"])
        hd = c["head_dim"]
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
        self.register_buffer("inv_freq", inv, persistent=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids, mask):
        L = ids.shape[1]
        pos = torch.arange(L, device=ids.device).float()
        f = torch.outer(pos, self.inv_freq)
        emb = torch.cat([f, f], -1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos.to(x.dtype), sin.to(x.dtype), mask)
        return self.norm(x) @ self.embed_tokens.weight.t().to(x.dtype)


def forward_cache(model, b):
    x = model.embed_tokens(b["ids"])
    mask = cache_mask(b)
    for layer in model.layers:
        x = layer.forward_cache(x, b, model.inv_freq, mask)
    return model.norm(x) @ model.embed_tokens.weight.t().to(x.dtype)


@torch.no_grad()
def evaluate_cache(model, runs, device, max_len, max_blocks, max_tokens=32768):
    """Held-out runs in the cache format: target-token and claim accuracy, runs with every target right, final sums right,
    and the final sums' accuracy by token position (v3: units digit first, then tens, ...: where a sum is learnt last)."""
    model.eval()
    tot_loss = tot_n = tot_ok = dec_n = dec_ok = runs_ok = sum_n = sum_ok = 0
    pos_n, pos_ok = [0] * 8, [0] * 8
    for idx in cache_batches(runs, max_tokens, random.Random(0), max_len, max_blocks):
        b = cache_collate(runs, idx, device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            logits = forward_cache(model, b).float()
        w = (b["wt"] > 0).float()
        lp = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b["tgt"].reshape(-1), reduction="none").view_as(w)
        ok = (logits.argmax(-1) == b["tgt"]).float()
        tot_loss += (lp * w).sum().item()
        tot_n += w.sum().item()
        tot_ok += (ok * w).sum().item()
        first = (b["wt"] == 2).float()
        dec_n += first.sum().item()
        dec_ok += (ok * first).sum().item()
        runs_ok += ((ok * w).sum(1) == w.sum(1)).sum().item()
        # A run's final sum (weight-3 tokens) counts as right when every one of its tokens is.
        s3 = (b["wt"] == 3).float()
        has = s3.sum(1) > 0
        sum_n += has.sum().item()
        sum_ok += (has & ((ok * s3).sum(1) == s3.sum(1))).sum().item()
        at = (s3.cumsum(1) - 1) * s3 - (1 - s3)  # each weight-3 token's index within its run's sum, -1 elsewhere
        for k in range(len(pos_n)):
            on = (at == k).float()
            pos_n[k] += on.sum().item()
            pos_ok[k] += (ok * on).sum().item()
    model.train()
    n_runs = len(cache_batches(runs, 1 << 30, random.Random(0), max_len, max_blocks)[0]) if runs else 1
    by_pos = [pos_ok[k] / pos_n[k] for k in range(len(pos_n)) if pos_n[k]]
    return tot_loss / max(tot_n, 1), tot_ok / max(tot_n, 1), runs_ok / max(n_runs, 1), dec_ok / max(dec_n, 1), (sum_ok / sum_n if sum_n else float("nan"), sum_n, by_pos)


def hf_state_dict(model):
    sd = {"model.embed_tokens.weight": model.embed_tokens.weight, "model.norm.weight": model.norm.weight}
    for i, l in enumerate(model.layers):
        p = f"model.layers.{i}."
        for n in ["q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm"]:
            sd[p + f"self_attn.{n}.weight"] = getattr(l, n).weight
        for n in ["gate_proj", "up_proj", "down_proj"]:
            sd[p + f"mlp.{n}.weight"] = getattr(l, n).weight
        sd[p + "input_layernorm.weight"] = l.input_layernorm.weight
        sd[p + "post_attention_layernorm.weight"] = l.post_attention_layernorm.weight
    return {k: v.detach().to(torch.bfloat16).cpu().contiguous() for k, v in sd.items()}


def config_json(c, vocab, eos, pad):
    return {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": pad, "eos_token_id": eos, "pad_token_id": pad, "head_dim": c["head_dim"], "hidden_act": "silu",
        "hidden_size": c["hidden"], "initializer_range": 0.02, "intermediate_size": c["inter"],
        "max_position_embeddings": c["max_pos"], "max_window_layers": c["layers"], "num_attention_heads": c["heads"],
        "num_hidden_layers": c["layers"], "num_key_value_heads": c["kv_heads"], "rms_norm_eps": c["eps"],
        "rope_scaling": None, "rope_theta": c["rope_theta"], "sliding_window": None, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "use_cache": True, "use_sliding_window": False, "vocab_size": vocab,
    }


@torch.no_grad()
def evaluate(model, seqs, device, max_len, max_tokens=65536):
    model.eval()
    tot_loss = tot_n = tot_ok = seq_ok = dec_n = dec_ok = 0
    for idx in batches(seqs, max_tokens, random.Random(0), max_len):
        ids, vis, loss, valid = collate(seqs, idx, device, max_len)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(ids, attention_mask(vis, valid)).float()
        tgt, w = ids[:, 1:], (loss[:, 1:] > 0).float()
        lp = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="none").view_as(w)
        ok = (logits[:, :-1].argmax(-1) == tgt).float()
        tot_loss += (lp * w).sum().item()
        tot_n += w.sum().item()
        tot_ok += (ok * w).sum().item()
        first = (loss[:, 1:] == 2).float()
        dec_n += first.sum().item()
        dec_ok += (ok * first).sum().item()
        seq_ok += ((ok * w).sum(1) == w.sum(1)).sum().item()
    model.train()
    return tot_loss / max(tot_n, 1), tot_ok / max(tot_n, 1), seq_ok / max(len(seqs), 1), dec_ok / max(dec_n, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--log", default=None)
    ap.add_argument("--minutes", type=float, default=4.5)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch-tokens", type=int, default=65536)
    ap.add_argument("--max-len", type=int, default=1024, help="longest sequence (cache format: longest run, in cache entries)")
    ap.add_argument("--max-blocks", type=int, default=48, help="cache format: runs with more blocks are left out (memory: queries are rotated once per block)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--init", default=None, help="start from this model.safetensors (a previous run's export)")
    ap.add_argument("--decision-weight", type=float, default=10.0, help="loss weight of each step's first written token (the claim)")
    ap.add_argument("--combine-weight", type=float, default=1.0, help="cache format: loss weight of the final sum's tokens (weight 3 in the data)")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--dry-run", action="store_true", help="a few steps only (checks the pipeline)")
    for k in ("layers", "hidden", "heads", "kv_heads", "head_dim", "inter"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=CFG[k], help=f"model shape (default {CFG[k]})")
    ap.add_argument("--schedule-minutes", type=float, default=None, help="the learning-rate schedule's length over all calls (default --minutes)")
    ap.add_argument("--schedule-start-minutes", type=float, default=0.0, help="with --init: the minutes of the schedule already trained in an earlier call whose state did not travel (the rate continues the cosine from there)")
    ap.add_argument("--state", default=None, help="resume from FILE when it exists; save model, optimiser and clock to it at the end")
    a = ap.parse_args()
    for k in ("layers", "hidden", "heads", "kv_heads", "head_dim", "inter"):
        CFG[k] = getattr(a, k)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = json.load(open(os.path.join(a.tokenizer, "tokenizer.json")))
    ntok = max(max(tok["model"]["vocab"].values()), max(t["id"] for t in tok["added_tokens"])) + 1
    vocab = (ntok + 63) // 64 * 64
    special = {t["content"]: t["id"] for t in tok["added_tokens"]}
    # Shards from make-train-data --views cache hold whole runs in the engine's cache format.
    cache = os.path.exists(os.path.join(a.data[0], "seg.u16"))
    train = load_cache_shards(a.data) if cache else load_shards(a.data)
    held = load_cache_shards([a.heldout]) if cache else load_shards([a.heldout])
    ntrain = sum(len(r["ids"]) for r in train) if cache else sum(len(s[0]) for s in train)
    log = open(a.log, "w") if a.log else sys.stdout
    def say(msg):
        print(msg, flush=True)
        if log is not sys.stdout:
            log.write(msg + "\n")
            log.flush()
    say(f"device {device}; vocab {ntok} (padded {vocab}); {len(train)} training {'runs (cache format)' if cache else 'sequences'} ({ntrain} tokens), {len(held)} held out")
    size = export_bytes(CFG, vocab)
    if size > MAX_EXPORT_BYTES:
        sys.exit(f"train.py: --layers {CFG['layers']} --hidden {CFG['hidden']} --inter {CFG['inter']}: model.safetensors would be {size / 1e6:.1f} MB, over the {MAX_EXPORT_BYTES / 1e6:.0f} MB the repository takes")
    model = Model(CFG, vocab).to(device)
    say(f"parameters {sum(p.numel() for p in model.parameters())} (layers {CFG['layers']}, hidden {CFG['hidden']}, heads {CFG['heads']}/{CFG['kv_heads']}, inter {CFG['inter']}; export {size / 1e6:.1f} MB)")
    if a.init:
        from safetensors.torch import load_file
        sd = {k.replace("model.", "", 1).replace("self_attn.", "").replace("mlp.", ""): v.float() for k, v in load_file(a.init).items()}
        model.load_state_dict(sd)
        say(f"initialised from {a.init}")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    rng = random.Random(a.seed)
    t0 = time.time()
    schedule = (a.schedule_minutes or a.minutes) * 60
    # before: seconds trained in earlier calls (from --state, or given with --init when the state could not travel)
    step, epoch, done, before = 0, 0, False, a.schedule_start_minutes * 60
    if a.state and os.path.exists(a.state):
        st = torch.load(a.state, map_location=device, weights_only=False)
        if st["cfg"] != CFG:
            sys.exit(f"train.py: --state {a.state} holds a model of shape {st['cfg']}, not {CFG}")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, epoch, before = st["step"], st["epoch"], st["seconds"]
        rng.setstate(st["rng"])
        torch.set_rng_state(st["torch_rng"].cpu())  # map_location moved it to the device
        say(f"resumed from {a.state}: step {step}, {before:.0f}s trained of a {schedule:.0f}s schedule")
    ema = None
    while not done:
        epoch += 1
        for idx in (cache_batches(train, a.batch_tokens, rng, a.max_len, a.max_blocks) if cache else batches(train, a.batch_tokens, rng, a.max_len)):
            frac = (before + time.time() - t0) / schedule
            if frac >= 1 or time.time() - t0 >= a.minutes * 60:
                done = True
                break
            lr = learning_rate(a.lr, step, a.warmup, frac)
            for g in opt.param_groups:
                g["lr"] = lr
            if cache:
                b = cache_collate(train, idx, device)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
                    logits = forward_cache(model, b)
                # A step's first written token decides what the worker does (which part it claims): weigh it up.
                # So is the final sum of the workers' totals, the one multi-term addition of a run.
                w = (b["wt"] > 0).float() * (1 + (a.decision_weight - 1) * (b["wt"] == 2).float() + (a.combine_weight - 1) * (b["wt"] == 3).float())
                lp = F.cross_entropy(logits.float().reshape(-1, vocab), b["tgt"].reshape(-1), reduction="none").view_as(w)
            else:
                ids, vis, loss, valid = collate(train, idx, device, a.max_len)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
                    logits = model(ids, attention_mask(vis, valid))
                # A step's first written token decides what the worker does (which part it claims): weigh it up.
                first = loss[:, 1:] == 2
                w = (loss[:, 1:] > 0).float() * (1 + (a.decision_weight - 1) * first.float())
                lp = F.cross_entropy(logits[:, :-1].float().reshape(-1, vocab), ids[:, 1:].reshape(-1), reduction="none").view_as(w)
            l = (lp * w).sum() / w.sum().clamp(min=1)
            opt.zero_grad(set_to_none=True)
            l.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            ema = l.item() if ema is None else 0.98 * ema + 0.02 * l.item()
            if step % 100 == 0:
                say(f"step {step} epoch {epoch} t {time.time() - t0:.0f}s lr {lr:.2e} loss {ema:.4f}")
            if a.dry_run and step >= 3:
                done = True
                break
    trained = before + time.time() - t0
    if a.state:
        torch.save({"cfg": CFG, "model": model.state_dict(), "opt": opt.state_dict(), "step": step, "epoch": epoch, "seconds": trained,
                    "rng": rng.getstate(), "torch_rng": torch.get_rng_state()}, a.state)
        say(f"state saved to {a.state}: step {step}, {trained:.0f}s of the {schedule:.0f}s schedule")
    sums = ""
    if cache:
        hl, hacc, hseq, hdec, (hsum, nsum, by_pos) = evaluate_cache(model, held, device, a.max_len, a.max_blocks)
        sums = f", final sums right {hsum:.4f} ({nsum} runs with a sum; by token of the sum: {' '.join(f'{x:.3f}' for x in by_pos)})"
    else:
        hl, hacc, hseq, hdec = evaluate(model, held, device, a.max_len)
    say(f"held-out: loss {hl:.4f}, target-token accuracy {hacc:.4f}, first-token (claim) accuracy {hdec:.4f}, {'runs' if cache else 'sequences'} with every target right {hseq:.4f} ({len(held)} {'runs' if cache else 'sequences'}){sums}")
    os.makedirs(a.out, exist_ok=True)
    from safetensors.torch import save_file
    sd = hf_state_dict(model)
    save_file(sd, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    cfg = config_json(CFG, vocab, special["<|im_end|>"], special["<|endoftext|>"])
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)
    json.dump({"eos_token_id": [special["<|im_end|>"], special["<|endoftext|>"]], "do_sample": False}, open(os.path.join(a.out, "generation_config.json"), "w"), indent=2)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(a.tokenizer, f), os.path.join(a.out, f))
    # The exported folder must mean the same model to transformers (the engine's reference).
    try:
        from transformers import Qwen3Config, Qwen3ForCausalLM
        ref = Qwen3ForCausalLM(Qwen3Config(**{k: v for k, v in cfg.items() if k not in ("architectures", "torch_dtype")})).float().eval()
        missing = ref.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
        ids = torch.tensor([list((held[0]["ids"] if cache else held[0][0])[:200].astype(np.int64))])
        mine = Model(CFG, vocab).float().eval()
        mine.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
        with torch.no_grad():
            causal = torch.ones(1, 1, ids.shape[1], ids.shape[1], dtype=torch.bool).tril()
            # Same bf16-rounded weights on both sides.
            for name, p in mine.named_parameters():
                p.copy_(p.to(torch.bfloat16).float())
            d = (ref(ids).logits - mine(ids, causal)).abs().max().item()
        say(f"transformers check: missing {missing.missing_keys}, max |logit difference| {d:.2e}")
    except Exception as e:  # noqa: BLE001 - the check reports, it does not stop the export
        say(f"transformers check failed: {e!r}")
    say(f"exported to {a.out}; {step} steps, {epoch} epochs, {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
