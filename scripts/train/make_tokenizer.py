#!/usr/bin/env python3
"""The built-in model's tokenizer: a small byte-level BPE trained here on a corpus of simulated
runs (node dist/cli/make-train-data.js --corpus FILE).

Why our own: the task's text uses a few hundred words, so about 1,000 ids cover it and keep
the embedding table tiny (Qwen3's 151,936 rows would be 95% of a 6M-parameter model). It keeps
Qwen's pre-tokenizer (one digit per token, so arithmetic is done digit by digit), Qwen's
byte-level alphabet (any text still encodes), ChatML special tokens, and it has tokens that
contain "\\n\\n" (the engine's step rule). Deterministic: the same corpus gives the same files.

usage: make_tokenizer.py CORPUS OUT_DIR [--vocab 1024]
"""
import argparse
import collections
import json
import os
import re

# Qwen2/Qwen3's split pattern with \\p{L} / \\p{N} written for ASCII (the corpus is ASCII).
PATTERN = re.compile(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def bytes_to_unicode():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def train(text, vocab_size):
    b2u = bytes_to_unicode()
    words = collections.Counter()
    for chunk in text.split("\x00"):
        for m in PATTERN.findall(chunk):
            words["".join(b2u[b] for b in m.encode("utf-8"))] += 1
    alphabet = [b2u[b] for b in range(256)]
    vocab = {s: i for i, s in enumerate(alphabet)}
    seqs = {w: list(w) for w in words}
    merges = []
    target = vocab_size - len(SPECIAL)
    while len(vocab) < target:
        pairs = collections.Counter()
        for w, n in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if pairs[best] < 2:
            break
        merged = best[0] + best[1]
        merges.append(best)
        vocab[merged] = len(vocab)
        for w in words:
            s = seqs[w]
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == best[0] and s[i + 1] == best[1]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return vocab, merges


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--vocab", type=int, default=1024)
    a = ap.parse_args()
    text = open(a.corpus, encoding="utf-8").read()
    vocab, merges = train(text, a.vocab)
    added = []
    for s in SPECIAL:
        vocab[s] = len(vocab)
        added.append({"id": vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True})
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN_REGEX}, "behavior": "Isolated", "invert": False}, byte_level]},
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {k: v for k, v in vocab.items() if k not in SPECIAL}, "merges": [[x, y] for x, y in merges]},
    }
    cfg = {
        "add_bos_token": False, "add_prefix_space": False, "bos_token": None, "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None, "errors": "replace",
        "model_max_length": 4096, "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer",
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "added_tokens_decoder": {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added},
        "chat_template": CHAT_TEMPLATE,
    }
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=None, separators=(",", ":"))
    with open(os.path.join(a.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
    print(f"{len(vocab)} ids ({len(merges)} merges) -> {a.out}")


if __name__ == "__main__":
    main()
