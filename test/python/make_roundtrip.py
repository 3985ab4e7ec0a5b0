#!/usr/bin/env python3
"""Write varied PyTorch checkpoints with real torch, plus what torch itself reads back.

Usage: /usr/bin/python3 test/python/make_roundtrip.py OUTDIR SEED

OUTDIR/expected.json has the shape of ../shared/fixtures/torch/expected.json: per file
`torch_load`, `top_level_keys` and `entries` (dotted path -> {dtype, shape, sha256} for a
tensor, {value} for an int/float/str/bool/None). Dict keys are str()'d, list and tuple
items keyed by index; empty containers produce no entry. `sha256` covers the tensor's
logical elements laid out contiguously, little-endian (bfloat16 as raw 16-bit patterns).

The ground truth is taken from torch.load of each written file and checked against the
object that was saved, so a mismatch in torch's own round trip fails here, not in the test.
Output is a function of SEED only.
"""
import collections
import hashlib
import json
import math
import os
import random
import sys
import zlib

import torch
from torch import nn

FLOATS = [torch.float32, torch.float16, torch.float64, torch.bfloat16]
INTS = {  # [low, high) drawn from, kept inside each dtype's range
    torch.int64: (-(2**62), 2**62),
    torch.int32: (-(2**31), 2**31),
    torch.int16: (-(2**15), 2**15),
    torch.int8: (-128, 128),
    torch.uint8: (0, 256),
}
ALL_DTYPES = FLOATS + list(INTS) + [torch.bool]


def dtype_name(dtype):
    return str(dtype).removeprefix("torch.")


def random_tensor(rng, dtype, shape):
    """Finite random values of `dtype` (no NaN/inf, so `verify` has nothing to flag)."""
    seed = rng.getrandbits(63)
    gen = torch.Generator().manual_seed(seed)
    if dtype in FLOATS:
        base = torch.float64 if dtype == torch.float64 else torch.float32
        return torch.randn(shape, generator=gen, dtype=base).to(dtype)
    if dtype in INTS:
        low, high = INTS[dtype]
        return torch.randint(low, high, shape, generator=gen, dtype=torch.int64).to(dtype)
    return torch.randint(0, 2, shape, generator=gen).to(torch.bool)


def random_shape(rng):
    return rng.choice([
        [],
        [0],
        [rng.randint(1, 9)],
        [rng.randint(1, 6), rng.randint(1, 6)],
        [rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 4)],
        [0, rng.randint(1, 5)],
        [rng.randint(1, 5), 0],
    ])


# ---- the checkpoints --------------------------------------------------------------------

def dtypes_random(rng):
    obj = {}
    for dtype in ALL_DTYPES:
        for i in range(2):
            obj[f"{dtype_name(dtype)}_{i}"] = random_tensor(rng, dtype, random_shape(rng))
    obj["scalar_0d"] = random_tensor(rng, rng.choice(ALL_DTYPES), [])
    obj["empty"] = random_tensor(rng, rng.choice(ALL_DTYPES), [0, 3])
    items = list(obj.items())
    rng.shuffle(items)  # key order is part of what top_level_keys checks
    return dict(items)


def views_shared_storage(rng):
    """Several tensors viewing one storage: offsets, non-contiguous, transposed, strided."""
    rows, cols = rng.randint(5, 9), rng.randint(6, 10)
    base = random_tensor(rng, torch.float32, [rows, cols])
    other = random_tensor(rng, rng.choice([torch.bfloat16, torch.int32, torch.float16]), [rows, cols])
    flat = base.view(-1)
    return {
        "base": base,
        "row_slice": base[2:4],          # storage offset 2*cols, contiguous
        "col_slice": base[:, 1:3],       # non-contiguous
        "transposed": base.t(),          # stride (1, cols)
        "every_other_row": base[::2],    # strided rows
        "flat_tail": flat[5:5 + cols],   # 1-d view with an offset
        "flat_strided": flat[1::3],
        "element": base[3, 4],           # 0-d view with an offset
        "other": other,
        "other_T": other.t(),
        "other_cols": other[:, ::2],
    }


def nested_containers(rng):
    leaf = lambda: random_tensor(rng, rng.choice(ALL_DTYPES), random_shape(rng))
    deep = leaf()
    for depth in range(rng.randint(2, 5)):
        deep = {f"level{depth}": deep} if depth % 2 else [deep, depth]
    return {
        "config": {"name": "héllo ✓ run", "lr": 3e-4, "flags": [True, False], "none": None,
                   "betas": (0.9, 0.95), "zero": 0.0, "big_int": 2**40, "neg": -123456789},
        "list": [leaf(), 1, "s", None, [1, 2, (3.5, leaf())]],
        "tuple": (leaf(), -7, 2.5),
        "int_keys": {0: leaf(), 7: "seven", -1: 1.25},
        "deep": deep,
        "empty_dict": {},
        "empty_list": [],
        "empty_tuple": (),
        "only_empties": {"x": {}, "y": [], "z": [{}, ()]},
        "ordered": collections.OrderedDict([("b", leaf()), ("a", 2)]),
    }


def parameters(rng):
    return {
        "weight": nn.Parameter(random_tensor(rng, torch.float32, [4, 3])),
        "frozen": nn.Parameter(random_tensor(rng, torch.float32, [3]), requires_grad=False),
        "grad_leaf": random_tensor(rng, torch.float64, [2, 2]).requires_grad_(),
        "param_list": [nn.Parameter(random_tensor(rng, torch.float32, [rng.randint(1, 5)]))
                       for _ in range(3)],
        "bf16_param": nn.Parameter(random_tensor(rng, torch.bfloat16, [2, 3])),
    }


class TinyNet(nn.Module):
    def __init__(self, vocab, hidden, classes):
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.fc = nn.Linear(hidden, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, classes, bias=False)

    def forward(self, ids):
        x = self.emb(ids).mean(dim=1)
        return self.head(self.norm(torch.relu(self.bn(self.fc(x)))))


def train_tiny(rng, make_optimizer, make_scheduler=None, steps=3):
    """A few real optimizer steps; returns (model, optimizer, scheduler, last loss, config)."""
    config = {"vocab": rng.randint(20, 60), "hidden": rng.choice([8, 16]), "classes": rng.randint(3, 9)}
    torch.manual_seed(rng.getrandbits(32))
    model = TinyNet(config["vocab"], config["hidden"], config["classes"])
    optimizer = make_optimizer(model)
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    loss = None
    for _ in range(steps):
        ids = torch.randint(0, config["vocab"], (8, 5))
        target = torch.randint(0, config["classes"], (8,))
        loss = nn.functional.cross_entropy(model(ids), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler:
            scheduler.step()
    return model, optimizer, scheduler, loss.item(), config


def training_checkpoint(rng, make_optimizer, make_scheduler=None):
    model, optimizer, scheduler, loss, config = train_tiny(rng, make_optimizer, make_scheduler)
    ckpt = {"epoch": rng.randint(1, 99), "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(), "loss": loss, "config": config}
    if scheduler:
        ckpt["scheduler_state_dict"] = scheduler.state_dict()
    return ckpt


def adam(rng):
    return training_checkpoint(rng, lambda m: torch.optim.Adam(m.parameters(), lr=1e-3))


def adamw_amsgrad(rng):
    return training_checkpoint(
        rng, lambda m: torch.optim.AdamW(m.parameters(), lr=2e-3, weight_decay=0.01, amsgrad=True),
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5))


def sgd_momentum(rng):
    def make(model):
        model.emb.weight.requires_grad_(False)  # no grad -> no state entry for param 0
        return torch.optim.SGD([
            {"params": [model.emb.weight, *model.fc.parameters()], "lr": 0.1},
            {"params": [*model.bn.parameters(), *model.norm.parameters(), model.head.weight]},
        ], lr=0.05, momentum=0.9, nesterov=True)
    return training_checkpoint(rng, make)


def model_state_dict(rng):
    """A bare state_dict at the top level: an OrderedDict carrying `_metadata` as state."""
    model, _, _, _, _ = train_tiny(rng, lambda m: torch.optim.SGD(m.parameters(), lr=0.1))
    return model.state_dict()


def optimizer_before_step(rng):
    """An optimizer that never stepped: `state` is an empty dict and yields no entries."""
    model = TinyNet(10, 4, 2)
    return {"optimizer": torch.optim.Adam(model.parameters()).state_dict(), "step": 0}


def large(rng):
    big = random_tensor(rng, torch.float32, [1000, 100])
    return {"big": big, "big_T": big.t(), "big_cols": big[:, 10:20],
            "half_strided": random_tensor(rng, torch.float16, [1000, 100])[::3],
            "ids": random_tensor(rng, torch.int64, [1000])}


LEGACY = {"_use_new_zipfile_serialization": False}
CHECKPOINTS = [  # (file name, builder, torch.save keyword arguments)
    ("dtypes_random.pt", dtypes_random, {}),
    ("views_shared_storage.pt", views_shared_storage, {}),
    ("nested_containers.pt", nested_containers, {"pickle_protocol": 4}),
    ("parameters.pt", parameters, {}),
    ("model_state_dict.pt", model_state_dict, {}),
    ("train_adam.pt", adam, {}),
    ("train_adamw_amsgrad.pt", adamw_amsgrad, {}),
    ("train_sgd_momentum.pt", sgd_momentum, {}),
    ("optimizer_before_step.pt", optimizer_before_step, {}),
    ("large_protocol4.pt", large, {"pickle_protocol": 4}),
    ("dtypes_protocol2.pt", dtypes_random, {"pickle_protocol": 2}),
    ("train_adam_legacy.pt", adam, LEGACY),
    ("views_legacy.pt", views_shared_storage, LEGACY),
    ("nested_legacy_protocol4.pt", nested_containers, {**LEGACY, "pickle_protocol": 4}),
]


# ---- ground truth -----------------------------------------------------------------------

def tensor_sha256(t):
    flat = t.detach().contiguous().reshape(-1)
    if flat.dtype == torch.bfloat16:
        flat = flat.view(torch.int16)  # numpy has no bfloat16; same bits
    data = flat.numpy()
    return hashlib.sha256(data.astype(data.dtype.newbyteorder("<")).tobytes()).hexdigest()


def entries_of(obj, path="", out=None):
    out = {} if out is None else out
    join = lambda key: f"{path}.{key}" if path else str(key)
    if isinstance(obj, torch.Tensor):
        out[path] = {"dtype": dtype_name(obj.dtype), "shape": list(obj.shape), "sha256": tensor_sha256(obj)}
    elif obj is None or isinstance(obj, (bool, int, str)):
        out[path] = {"value": obj}
    elif isinstance(obj, float):
        # JSON cannot carry these faithfully to the JS side.
        assert math.isfinite(obj) and not (obj == 0 and math.copysign(1, obj) < 0), (path, obj)
        out[path] = {"value": obj}
    elif isinstance(obj, dict):
        for key, value in obj.items():
            assert isinstance(key, (str, int)), (path, key)
            entries_of(value, join(key), out)
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            entries_of(value, join(index), out)
    else:
        raise TypeError(f"{path}: no expected.json form for {type(obj).__name__}")
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR SEED")
    outdir, seed = sys.argv[1], int(sys.argv[2])
    os.makedirs(outdir, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    expected = {"_about": f"Written by make_roundtrip.py with torch {torch.__version__}, seed {seed}; "
                          "ground truth from torch.load of each file."}
    for name, build, save_kwargs in CHECKPOINTS:
        rng = random.Random(f"{seed}:{name}")
        torch.manual_seed(zlib.crc32(f"{seed}:{name}".encode()))
        obj = build(rng)
        path = os.path.join(outdir, name)
        torch.save(obj, path, **save_kwargs)
        loaded = torch.load(path, map_location="cpu")
        entries = entries_of(loaded)
        if entries != entries_of(obj):
            sys.exit(f"{name}: torch.load does not give back what was saved")
        expected[name] = {"torch_load": "ok", "top_level_keys": [str(k) for k in loaded],
                          "entries": entries}
    with open(os.path.join(outdir, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
