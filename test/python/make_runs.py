#!/usr/bin/env python3
"""Write run directories of real torch checkpoints for the catalog tests (ls, latest, check-run, diff).

Usage: /usr/bin/python3 test/python/make_runs.py OUTDIR

Every run trains a tiny MLP for a few steps per epoch with a real optimizer, then saves the way
training code in the wild does. OUTDIR/expected.json records what the tests assert on: which
file each question should answer with, and the differences torch itself computes for `diff`.

  main/       Adam, ckpt_epoch_0001..0005.pt with val_loss; 0005 truncated (the save died);
              best.pt is epoch 2 although epoch 3 has the lowest val_loss; a temp-named complete
              save `.ckpt_epoch_0006.pt.x1y2.tmp`; config.epochs = 10.
  gap/        Adam, epochs 1..6 with epoch 4 missing.
  restart/    Adam, epochs 1..3, then ckpt_epoch_0004.pt holding epoch 1 again.
  stalled/    Adam, epochs 1..3; epoch 3 holds epoch 2's weights.
  nan/        Adam, epochs 1..3; epoch 3 diverged (NaN weights, NaN loss).
  noopt/      Adam, epochs 1..3; epoch 3 saved without the optimizer state.
  sgd/        SGD with momentum, epochs 1..3, all good; config.epochs = 6.
  lightning/  Lightning-like `epoch=E-step=S.ckpt` + last.ckpt, ordered by global_step.
  hf/         HF-Trainer-like checkpoint-5/, -10/, -20/, -100/ (readdir order differs from step
              order) + tmp-checkpoint-120/ still being written; checkpoint-5 holds model.safetensors,
              the others pytorch_model.bin.
  diff/       a.pt / a_copy.pt (identical) and b.pt (one optimizer step later, epoch 1 -> 2);
              kinds.pt / kinds2.pt: dtype, shape, scalar, added and removed keys, fp16/bf16 changes.
"""
import json
import math
import os
import shutil
import struct
import sys

import torch
from torch import nn

OUT = sys.argv[1]
expected = {}


def make_model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))


def data(seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 8, generator=gen)
    return x, x.sum(dim=1, keepdim=True).sin()


def train_steps(model, optimizer, steps, seed):
    x, y = data(seed)
    loss = None
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss)


def save(obj, *parts):
    path = os.path.join(OUT, *parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(obj, path)
    return path


def plain_run(name, epochs, optimizer_kind="adam", val_losses=None, total=None):
    model = make_model(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2) if optimizer_kind == "adam" else torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    paths = []
    for epoch in range(1, epochs + 1):
        loss = train_steps(model, opt, 3, 0)
        ckpt = {"epoch": epoch, "model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict(), "loss": loss}
        if val_losses is not None:
            ckpt["val_loss"] = val_losses[epoch - 1]
        if total is not None:
            ckpt["config"] = {"epochs": total, "lr": 1e-2}
        paths.append(save(ckpt, name, f"ckpt_epoch_{epoch:04d}.pt"))
    return model, opt, paths


# main: truncated newest, best that is not best, temp-named save, total from config.
_, _, main_paths = plain_run("main", 5, val_losses=[0.9, 0.7, 0.5, 0.6, 0.55], total=10)
shutil.copyfile(main_paths[1], os.path.join(OUT, "main", "best.pt"))
shutil.copyfile(main_paths[4], os.path.join(OUT, "main", ".ckpt_epoch_0006.pt.x1y2.tmp"))
size = os.path.getsize(main_paths[4])
with open(main_paths[4], "r+b") as f:
    f.truncate(size // 2)
expected["main"] = {"latest": "ckpt_epoch_0004.pt", "best_val_loss": "ckpt_epoch_0003.pt", "truncated": "ckpt_epoch_0005.pt", "best_alias": "best.pt", "total": 10}

# nan: the newest diverged.
model, opt, nan_paths = plain_run("nan", 2)
with torch.no_grad():
    model[0].weight[0, 0] = float("nan")
    model[2].bias.fill_(float("inf"))
save({"epoch": 3, "model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict(), "loss": float("nan")}, "nan", "ckpt_epoch_0003.pt")
expected["nan"] = {"latest": "ckpt_epoch_0002.pt", "nan": "ckpt_epoch_0003.pt"}

# noopt: the newest lost its optimizer.
model, opt, _ = plain_run("noopt", 2)
train_steps(model, opt, 3, 0)
save({"epoch": 3, "model_state_dict": model.state_dict(), "loss": 0.1}, "noopt", "ckpt_epoch_0003.pt")
expected["noopt"] = {"latest": "ckpt_epoch_0002.pt", "latest_any_kind": "ckpt_epoch_0003.pt"}

# gap: epoch 4 never saved. restart: a resume that silently started over wrote epoch 1 as file 4.
_, _, gap_paths = plain_run("gap", 6)
os.unlink(gap_paths[3])
expected["gap"] = {"from": 3, "to": 5}
_, _, restart_paths = plain_run("restart", 3)
shutil.copyfile(restart_paths[0], os.path.join(OUT, "restart", "ckpt_epoch_0004.pt"))
expected["restart"] = {"later_name": "ckpt_epoch_0004.pt", "latest": "ckpt_epoch_0003.pt"}

# stalled: epoch 3 saved without a single step since epoch 2 (lr 0, a frozen model, a stale copy).
model, opt, _ = plain_run("stalled", 2)
save({"epoch": 3, "model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict(), "loss": 0.4}, "stalled", "ckpt_epoch_0003.pt")
expected["stalled"] = {"unchanged": "ckpt_epoch_0003.pt", "previous": "ckpt_epoch_0002.pt"}

# sgd: a healthy run.
plain_run("sgd", 3, optimizer_kind="sgd", total=6)
expected["sgd"] = {"latest": "ckpt_epoch_0003.pt", "total": 6}

# lightning: lightning/pytorch/trainer/connectors/checkpoint_connector.py dump_checkpoint's keys.
model = make_model(2)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
lightning_names = []
for epoch, step in [(0, 10), (1, 20), (2, 30)]:
    loss = train_steps(model, opt, 2, step)
    ckpt = {
        "epoch": epoch, "global_step": step, "pytorch-lightning_version": "2.1.0",
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": epoch}}}},
        "callbacks": {"ModelCheckpoint{'monitor': None}": {"best_model_path": "", "dirpath": "ckpt"}},
        "optimizer_states": [opt.state_dict()], "lr_schedulers": [],
        "hparams_name": "kwargs", "hyper_parameters": {"max_epochs": 5, "lr": 1e-3},
    }
    name = f"epoch={epoch}-step={step}.ckpt"
    lightning_names.append(name)
    save(ckpt, "lightning", name)
save(ckpt, "lightning", "last.ckpt")
expected["lightning"] = {"order": lightning_names, "steps": [10, 20, 30]}


def write_safetensors(tensors, path):
    """safetensors by hand (the package is not installed): 8-byte header length, JSON header, raw bytes."""
    names = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}
    header, blobs, offset = {}, [], 0
    for key, t in tensors.items():
        raw = t.contiguous().numpy().tobytes()
        header[key] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


# hf: transformers/trainer.py _save_checkpoint's files.
model = make_model(3)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
log_history = []
steps = [5, 10, 20, 100]
for i, step in enumerate(steps):
    loss = train_steps(model, opt, 2, step)
    log_history.append({"epoch": step / 20, "step": step, "loss": loss, "learning_rate": 1e-3})
    log_history.append({"epoch": step / 20, "step": step, "eval_loss": [0.8, 0.6, 0.65, 0.7][i]})
    d = os.path.join(OUT, "hf", f"checkpoint-{step}")
    os.makedirs(d)
    if i == 0:
        write_safetensors({k: v.detach().clone() for k, v in model.state_dict().items()}, os.path.join(d, "model.safetensors"))
    else:
        torch.save(model.state_dict(), os.path.join(d, "pytorch_model.bin"))
    torch.save(opt.state_dict(), os.path.join(d, "optimizer.pt"))
    torch.save(sched.state_dict(), os.path.join(d, "scheduler.pt"))
    state = {"global_step": step, "epoch": step / 20, "max_steps": 200, "num_train_epochs": 10,
             "best_metric": 0.6, "best_model_checkpoint": os.path.join("hf", "checkpoint-10"), "log_history": list(log_history)}
    with open(os.path.join(d, "trainer_state.json"), "w") as f:
        json.dump(state, f)
tmp = os.path.join(OUT, "hf", "tmp-checkpoint-120")
os.makedirs(tmp)
torch.save(model.state_dict(), os.path.join(tmp, "pytorch_model.bin"))
expected["hf"] = {"order": [f"checkpoint-{s}" for s in steps], "steps": steps, "latest": "checkpoint-100", "best_eval_loss": "checkpoint-10", "in_progress": "tmp-checkpoint-120"}

# diff: identical files, one step apart, and every kind of change.
model = make_model(4)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
train_steps(model, opt, 1, 0)
a = {"epoch": 1, "model_state_dict": {k: v.clone() for k, v in model.state_dict().items()}, "optimizer_state_dict": opt.state_dict()}
save(a, "diff", "a.pt")
save(a, "diff", "a_copy.pt")
train_steps(model, opt, 1, 1)
b = {"epoch": 2, "model_state_dict": {k: v.clone() for k, v in model.state_dict().items()}, "optimizer_state_dict": opt.state_dict()}
save(b, "diff", "b.pt")


def stats(x, y):
    x, y = x.double(), y.double()
    return {"max_abs_diff": float((y - x).abs().max()), "rel_l2": float((y - x).norm() / x.norm())}


weight = "model_state_dict.0.weight"
expected["diff"] = {"a_b": {weight: stats(a["model_state_dict"]["0.weight"], b["model_state_dict"]["0.weight"])}}

gen = torch.Generator().manual_seed(5)
base = torch.randn(6, 5, generator=gen)
kinds_a = {
    "same": torch.arange(4), "half": base.half(), "bf16": base.bfloat16(), "float": base.clone(),
    "transposed": base.t(), "retyped": base.clone(), "reshaped": base.clone(), "lr": 0.1, "name": "x", "gone": torch.ones(2),
}
bumped = base + torch.linspace(-0.5, 0.5, 30, dtype=torch.float32).reshape(6, 5)
kinds_b = {
    "same": torch.arange(4), "half": bumped.half(), "bf16": bumped.bfloat16(), "float": bumped.clone(),
    "transposed": bumped.t(), "retyped": base.double(), "reshaped": base.reshape(5, 6).clone(), "lr": 0.01, "name": "x", "new": torch.zeros(3),
}
save(kinds_a, "diff", "kinds.pt")
save(kinds_b, "diff", "kinds2.pt")
expected["diff"]["kinds"] = {
    "added": ["new"], "removed": ["gone"],
    "values": {k: stats(kinds_a[k], kinds_b[k]) for k in ["half", "bf16", "float", "transposed"]},
    "dtype": {"retyped": ["float32", "float64"]}, "shape": {"reshaped": [[6, 5], [5, 6]]}, "value": {"lr": [0.1, 0.01]},
}

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
