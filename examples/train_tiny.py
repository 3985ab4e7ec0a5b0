#!/usr/bin/env python3
"""A real, tiny training run (CPU, seconds) that checkpoints the way long runs should.

    /usr/bin/python3 examples/train_tiny.py --out ckpt/ --epochs 5 [--resume ckpt/ckpt_epoch_0003.pt] [--save-every 1]

Each checkpoint is {epoch, model_state_dict, optimizer_state_dict, loss, val_loss, rng_state,
config}, written atomically as OUT/ckpt_epoch_{epoch:04d}.pt: a reader never sees a
half-written file. The shuffle of epoch e is seeded by (seed, e), the global RNG state is
saved and restored, and torch runs on one thread, so a resumed run continues bit for bit
as an uninterrupted one would.

Under `ckptguard run --dir ckpt/ -- python3 examples/train_tiny.py --out ckpt/ --epochs 5
--resume {resume}` the resume checkpoint also arrives as CKPTGUARD_RESUME, and each epoch
appends {"epoch", "step", "loss", "val_loss", "total_epochs"} to the CKPTGUARD_PROGRESS file.

Saving and progress go through ckptguard's Python companion (`atomic_save`, `Progress`) when it
is importable: installed, on PYTHONPATH (`ckptguard python-path`), or in ../python beside this
example. Without it the script does the same with the plain code below.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import torch
from torch import nn

try:
    import ckptguard
except ImportError:
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "python"))
    try:
        import ckptguard
    except ImportError:
        ckptguard = None

CONFIG = {"seed": 0, "in_dim": 16, "hidden": 64, "samples": 1024, "batch_size": 64, "lr": 1e-3}


def synthetic_data(config):
    gen = torch.Generator().manual_seed(config["seed"])
    x = torch.randn(config["samples"], config["in_dim"], generator=gen)
    w = torch.randn(config["in_dim"], 1, generator=gen)
    y = torch.sin(x @ w) + 0.1 * torch.randn(config["samples"], 1, generator=gen)
    return x, y


def save_atomic(obj, path):
    """Temp file in the same directory, fsync, rename over `path`, fsync the directory."""
    if ckptguard is not None:
        ckptguard.atomic_save(obj, path)  # the same, and also safe against Ctrl-C and a full disk
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(f.fileno(), 0o666 & ~umask)  # mkstemp's 0600 is for the temp name only
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # makes the rename itself durable
    finally:
        os.close(dir_fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for ckpt_epoch_NNNN.pt files")
    parser.add_argument("--epochs", type=int, required=True, help="train until this epoch")
    parser.add_argument("--resume", default=os.environ.get("CKPTGUARD_RESUME", ""),
                        help="checkpoint to continue from (default $CKPTGUARD_RESUME; empty: fresh start)")
    parser.add_argument("--save-every", type=int, default=1, help="save every K epochs (and the last)")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds to idle after each epoch (to stretch runs in tests)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    torch.set_num_threads(1)  # multi-threaded CPU kernels may sum in another order: not bitwise reproducible
    config = dict(CONFIG)
    torch.manual_seed(config["seed"])
    model = nn.Sequential(nn.Linear(config["in_dim"], config["hidden"]), nn.ReLU(),
                          nn.Linear(config["hidden"], config["hidden"]), nn.ReLU(),
                          nn.Linear(config["hidden"], 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    # One report an epoch: rare enough in real runs that it needs no throttle.
    progress = ckptguard.Progress(min_interval=0) if ckptguard is not None else None
    start_epoch = 1
    if args.resume:
        ckpt = torch.load(args.resume, map_location="cpu")
        model.load_state_dict(ckpt["model_state_dict"])
        optimizer.load_state_dict(ckpt["optimizer_state_dict"])
        start_epoch = ckpt["epoch"] + 1
        if "rng_state" in ckpt:
            torch.set_rng_state(ckpt["rng_state"])
        print(f"resumed from {args.resume} at epoch {ckpt['epoch']}", flush=True)

    x, y = synthetic_data(config)
    val_x, val_y = synthetic_data(dict(config, seed=config["seed"] + 1, samples=256))
    for epoch in range(start_epoch, args.epochs + 1):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(config["seed"] * 100003 + epoch))
        total = 0.0
        for batch in order.split(config["batch_size"]):
            loss = nn.functional.mse_loss(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        epoch_loss = total / len(x)
        with torch.no_grad():
            val_loss = nn.functional.mse_loss(model(val_x), val_y).item()
        line = f"epoch {epoch}/{args.epochs} loss {epoch_loss:.6f}"
        if epoch % args.save_every == 0 or epoch == args.epochs:
            path = os.path.join(args.out, f"ckpt_epoch_{epoch:04d}.pt")
            save_atomic({"epoch": epoch, "model_state_dict": model.state_dict(),
                         "optimizer_state_dict": optimizer.state_dict(), "loss": epoch_loss,
                         "val_loss": val_loss, "rng_state": torch.get_rng_state(), "config": config}, path)
            line += f" saved {path}"
        print(line, flush=True)
        report_progress(progress, {"epoch": epoch, "step": epoch * len(order.split(config["batch_size"])), "loss": epoch_loss,
                         "val_loss": val_loss, "total_epochs": args.epochs})
        if args.sleep > 0:
            time.sleep(args.sleep)


def report_progress(progress, values):
    """One JSON line for `ckptguard run` (CKPTGUARD_PROGRESS names the file), if it is watching."""
    if progress is not None:
        progress.report(**values)
        return
    path = os.environ.get("CKPTGUARD_PROGRESS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(values) + "\n")


if __name__ == "__main__":
    main()
