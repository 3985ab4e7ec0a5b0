#!/usr/bin/env python3
"""Write a GPT-2-small training checkpoint (~1.5 GB) with real torch, for benchmarks.

    /usr/bin/python3 bench/make_gpt2_checkpoint.py OUT

The model is GPT-2 small built from torch.nn (12 layers, d=768, 12 heads, vocab 50257,
context 1024, lm_head tied to the token embedding: ~124M parameters), laid out like
nanoGPT's `transformer.h.N.attn.c_attn...` state dict. AdamW (decay/no-decay groups, as
nanoGPT does) takes ONE step on a batch of 1 x 8 random tokens so that every parameter has
exp_avg and exp_avg_sq. Saved with torch.save (zip format) as
{iter_num, model, optimizer, config, best_val_loss}, atomically.

OUT.done records the size written; when it matches OUT's size the script does nothing.
"""
import math
import os
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

CONFIG = {"n_layer": 12, "n_head": 12, "n_embd": 768, "vocab_size": 50257, "block_size": 1024,
          "dropout": 0.0, "bias": True}


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head = c["n_head"]
        self.c_attn = nn.Linear(c["n_embd"], 3 * c["n_embd"], bias=c["bias"])
        self.c_proj = nn.Linear(c["n_embd"], c["n_embd"], bias=c["bias"])
        # Not persistent: nanoGPT's 4 MB-per-layer mask buffer is not model state.
        mask = torch.tril(torch.ones(c["block_size"], c["block_size"], dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        att = att.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(dim=-1)
        return self.c_proj((att @ v).transpose(1, 2).contiguous().view(b, t, d))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c["n_embd"])
        self.attn = CausalSelfAttention(c)
        self.ln_2 = nn.LayerNorm(c["n_embd"])
        self.mlp = nn.ModuleDict({"c_fc": nn.Linear(c["n_embd"], 4 * c["n_embd"], bias=c["bias"]),
                                  "c_proj": nn.Linear(4 * c["n_embd"], c["n_embd"], bias=c["bias"])})

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp["c_proj"](F.gelu(self.mlp["c_fc"](self.ln_2(x))))


class GPT2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(c["vocab_size"], c["n_embd"]),
            "wpe": nn.Embedding(c["block_size"], c["n_embd"]),
            "h": nn.ModuleList(Block(c) for _ in range(c["n_layer"])),
            "ln_f": nn.LayerNorm(c["n_embd"]),
        })
        self.lm_head = nn.Linear(c["n_embd"], c["vocab_size"], bias=False)
        self.lm_head.weight = self.transformer["wte"].weight  # tied: one storage, two keys

    def forward(self, idx):
        pos = torch.arange(idx.size(1))
        x = self.transformer["wte"](idx) + self.transformer["wpe"](pos)
        for block in self.transformer["h"]:
            x = block(x)
        return self.lm_head(self.transformer["ln_f"](x))


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT")
    out = sys.argv[1]
    marker = out + ".done"
    if os.path.exists(out) and os.path.exists(marker):
        with open(marker) as f:
            if f.read().strip() == str(os.path.getsize(out)):
                print(f"{out} exists ({os.path.getsize(out)} bytes); nothing to do")
                return
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    started = time.perf_counter()
    torch.manual_seed(1337)
    model = GPT2(CONFIG)
    params = list(model.parameters())  # deduplicated: the tied weight appears once
    print(f"{sum(p.numel() for p in params) / 1e6:.1f}M parameters", flush=True)
    optimizer = torch.optim.AdamW([
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ], lr=6e-4, betas=(0.9, 0.95))
    idx = torch.randint(0, CONFIG["vocab_size"], (1, 9))
    logits = model(idx[:, :-1])
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), idx[:, 1:].reshape(-1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)  # frees 0.5 GB before saving

    ckpt = {"iter_num": 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "config": CONFIG, "best_val_loss": loss.item()}
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        torch.save(ckpt, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    with open(marker, "w") as f:
        f.write(f"{os.path.getsize(out)}\n")
    print(f"wrote {out}: {os.path.getsize(out)} bytes in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
