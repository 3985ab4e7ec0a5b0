#!/usr/bin/env python3
"""A stand-in for a big training run, for bench/supervisor.ts: every INTERVAL seconds it
saves a ~SIZE_MB training checkpoint (half weights, half Adam state) atomically into
$CKPTGUARD_DIR (or --out), and prints how long the save and the whole period took.

    checkpoint_writer.py --saves 6 --interval 10 --size-mb 100 [--out DIR] [--resume PATH]
"""
import argparse
import json
import os
import tempfile
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=os.environ.get("CKPTGUARD_DIR", ""))
parser.add_argument("--saves", type=int, default=6)
parser.add_argument("--interval", type=float, default=10.0)
parser.add_argument("--size-mb", type=float, default=100.0)
parser.add_argument("--resume", default="")
args = parser.parse_args()
torch.set_num_threads(1)

elements = int(args.size_mb * 1e6 / 4 / 2)
weights = torch.randn(elements)
state = {"model_state_dict": {"w": weights},
         "optimizer_state_dict": {"state": {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(elements)}},
                                  "param_groups": [{"lr": 1e-3, "params": [0]}]}}
start = 1
if args.resume:
    start = int(os.path.basename(args.resume).split("_")[-1].split(".")[0]) + 1

next_at = time.monotonic()
for epoch in range(start, start + args.saves):
    next_at += args.interval
    while time.monotonic() < next_at:  # "training": a busy loop, as a GPU feeder thread would be
        weights.add_(1e-6)
        time.sleep(0.05)
    began = time.monotonic()
    path = os.path.join(args.out, f"ckpt_epoch_{epoch:04d}.pt")
    fd, tmp = tempfile.mkstemp(dir=args.out, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        torch.save(dict(state, epoch=epoch, loss=1.0 / epoch), f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    saved = time.monotonic() - began
    print(json.dumps({"epoch": epoch, "save_seconds": round(saved, 3), "late_seconds": round(began - next_at, 3)}), flush=True)
