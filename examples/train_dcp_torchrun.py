#!/usr/bin/env python3
"""A tiny data-parallel run under torchrun that saves torch.distributed.checkpoint (DCP) directories.

    ckptguard run --dir ckpt --settle 1s -- \\
        torchrun --standalone --nproc_per_node 2 examples/train_dcp_torchrun.py --out ckpt --steps 6 --resume {resume}

Every rank trains the same small model (gloo, CPU) and owns one row-chunk of a ShardedTensor
`emb`, so each save `OUT/step-NNNN/` holds `__<rank>_0.distcp` from every rank plus `.metadata`,
which torch writes last (a save killed midway has no `.metadata` and never verifies as valid).
The model and AdamW state are written by rank 0 as torch.save streams inside the same directory.
`--resume DIR` loads such a directory on every rank. `--crash-at-step N` makes rank 1 die once
at step N (a marker file in OUT remembers it did), to watch ckptguard relaunch torchrun from
the newest valid save; `--seconds-per-step S` slows it down enough to kill it by hand.

Written for torch 1.13 (torch.distributed._shard.checkpoint, which torch 2.x keeps as
torch.distributed.checkpoint with the same save_state_dict/load_state_dict calls).
"""
import argparse
import copy
import dataclasses
import os
import sys
import time


def allow_mutable_dataclass_defaults():
    """torch 1.13's sharded_tensor/metadata.py has a dataclass default Python 3.11 refuses
    (`field(default=TensorProperties())`); later torch versions use a default_factory, as this does."""
    original = dataclasses._get_field

    def get_field(cls, name, type_, *rest):
        default = cls.__dict__.get(name, dataclasses.MISSING)
        if isinstance(default, dataclasses.Field):
            default = default.default
        if dataclasses.is_dataclass(default) and not isinstance(default, type) and type(default).__hash__ is None:
            setattr(cls, name, dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d)))
        return original(cls, name, type_, *rest)

    dataclasses._get_field = get_field


if sys.version_info >= (3, 11):
    allow_mutable_dataclass_defaults()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.distributed._shard.checkpoint as dcp  # noqa: E402
from torch.distributed._shard import sharded_tensor  # noqa: E402
from torch.distributed._shard.sharding_spec import ChunkShardingSpec  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--resume", default=None)
    parser.add_argument("--crash-at-step", type=int, default=None)
    parser.add_argument("--seconds-per-step", type=float, default=0.0, help="sleep each step, to stand for real work")
    args = parser.parse_args()

    dist.init_process_group("gloo")  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Linear(16, 4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    spec = ChunkShardingSpec(dim=0, placements=[f"rank:{r}/cpu" for r in range(world)])
    emb = sharded_tensor.zeros(spec, 8 * world, 16)

    step = 0
    if args.resume:
        # 1.13 writes nested dicts as torch.save streams: load_state_dict replaces these entries whole.
        state = {"model": None, "optimizer": None, "step": None, "emb": emb}
        dcp.load_state_dict(state, dcp.FileSystemReader(args.resume))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        if rank == 0:
            print(f"resumed from {args.resume} at step {step}", flush=True)

    data = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))
    target = torch.randn(64, 4, generator=torch.Generator().manual_seed(2))
    while step < args.steps:
        step += 1
        loss = torch.nn.functional.mse_loss(model(data), target)
        optimizer.zero_grad()
        loss.backward()
        for p in model.parameters():  # data parallel: average the gradients over ranks
            dist.all_reduce(p.grad)
            p.grad /= world
        optimizer.step()
        emb.local_shards()[0].tensor.add_(1.0)
        time.sleep(args.seconds_per_step)
        marker = os.path.join(args.out, ".crashed-once")
        if args.crash_at_step == step and rank == 1 and not os.path.exists(marker):
            open(marker, "w").close()
            print(f"rank 1 dies at step {step}", flush=True)
            os._exit(1)
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "emb": emb}
        dcp.save_state_dict(state, dcp.FileSystemWriter(os.path.join(args.out, f"step-{step:04d}"), single_file_per_rank=True))
        if rank == 0:
            print(f"step {step} loss {loss.item():.4f}", flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
