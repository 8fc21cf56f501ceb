#!/usr/bin/env python3
"""Which training format is the engine's? Replays one engine run's cache (npm run compare-views
-- --dump FILE) through train.py's model in two ways and counts, for every token the engine
sampled, whether the model's argmax there is the engine's token (greedy runs):

  cache:     every cache entry's hidden state is computed once, in the view it was written
             in (prompt causally, each header after the prompt, each worker's writes of
             engine step s in that worker's view at s); later readers see its K/V at their
             view's positions. This is what the Hogwild engine computes (K/V are written
             once, moved with re-rotation, never recomputed).
  recompute: each sampled token's view recomputed causally from scratch, as one sequence:
             what train.py's sequences teach (a history token's state is computed after
             the history before it, not in the view it was written in).

A model trained on the recompute format that fails in the engine shows the gap here.

usage: cache_forward.py MODEL_DIR TRACE.json
"""
import importlib.util
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("train", os.path.join(HERE, "train.py"))
T = importlib.util.module_from_spec(spec)
spec.loader.exec_module(T)


def load_model(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    for k, hk in (("layers", "num_hidden_layers"), ("hidden", "hidden_size"), ("heads", "num_attention_heads"),
                  ("kv_heads", "num_key_value_heads"), ("head_dim", "head_dim"), ("inter", "intermediate_size")):
        T.CFG[k] = cfg[hk]
    T.CFG["rope_theta"] = cfg["rope_theta"]
    m = T.Model(T.CFG, cfg["vocab_size"]).float().eval()
    sd = {k.replace("model.", "", 1).replace("self_attn.", "").replace("mlp.", ""): v.float()
          for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
    m.load_state_dict(sd)
    return m


def rope_at(m, x, pos):
    """x [n, heads, hd] rotated to positions pos [n]."""
    f = torch.outer(pos.float(), m.inv_freq)
    emb = torch.cat([f, f], -1)
    return T.rope(x, emb.cos()[:, None, :], emb.sin()[:, None, :])


@torch.no_grad()
def cache_logits(m, ids, groups):
    """groups: (view uids, query uids): each query's keys are the view up to itself."""
    h = m.embed_tokens(torch.tensor(ids))
    for L in m.layers:
        x = L.input_layernorm(h)
        n = x.shape[0]
        q = L.q_norm(L.q_proj(x).view(n, L.nh, L.hd))
        k = L.k_norm(L.k_proj(x).view(n, L.nkv, L.hd))
        v = L.v_proj(x).view(n, L.nkv, L.hd)
        out = torch.zeros(n, L.nh, L.hd)
        for view, queries in groups:
            vt = torch.tensor(view)
            at = {u: i for i, u in enumerate(view)}
            qpos = torch.tensor([at[u] for u in queries])
            kr = rope_at(m, k[vt], torch.arange(len(view))).repeat_interleave(L.nh // L.nkv, 1)
            vr = v[vt].repeat_interleave(L.nh // L.nkv, 1)
            qr = rope_at(m, q[torch.tensor(queries)], qpos)
            mask = torch.arange(len(view))[None, :] <= qpos[:, None]
            s = torch.einsum("qhd,khd->hqk", qr, kr) / L.hd ** 0.5
            s = s.masked_fill(~mask[None], float("-inf"))
            out[torch.tensor(queries)] = torch.einsum("hqk,khd->qhd", F.softmax(s, -1), vr)
        h = h + L.o_proj(out.reshape(n, -1))
        h = h + L.down_proj(F.silu(L.gate_proj(L.post_attention_layernorm(h))) * L.up_proj(L.post_attention_layernorm(h)))
    return m.norm(h) @ m.embed_tokens.weight.t()


@torch.no_grad()
def recompute_argmax(m, view_ids):
    ids = torch.tensor([view_ids])
    L = ids.shape[1]
    return int(m(ids, torch.ones(1, 1, L, L, dtype=torch.bool).tril())[0, -1].argmax())


def main():
    m = load_model(sys.argv[1])
    tr = json.load(open(sys.argv[2]))
    ids = tr["ids"]
    P = tr["prompt"]
    groups = [(P, P)] + [(P + hd, hd) for hd in tr["headers"]] + [(f["view"], f["written"]) for f in tr["forwards"]]
    logits = cache_logits(m, ids, groups)
    nxt = {(f["step"], f["worker"]): f["written"] for f in tr["forwards"]}
    checked = cache_ok = rec_ok = 0
    for f in tr["forwards"]:
        after = nxt.get((f["step"] + 1, f["worker"]))
        if not after or len(after) != 1:
            continue  # a header (fed, not sampled) or the worker's end
        want = ids[after[0]]
        checked += 1
        c = int(logits[f["written"][-1]].argmax())
        r = recompute_argmax(m, [ids[u] for u in f["view"]])
        cache_ok += c == want
        rec_ok += r == want
        if c != want or r != want:
            print(f"step {f['step']} worker {f['worker']}: engine sampled {want}, cache format {c}, recompute format {r}")
    print(f"{tr['workers']} workers, {tr['layout']}: {checked} sampled tokens; the cache format agrees with the engine on {cache_ok}, the recompute format on {rec_ok}")


if __name__ == "__main__":
    main()
