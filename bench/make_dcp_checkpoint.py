"""Writes the ~2 GB torch.distributed.checkpoint that bench/verify-dcp.ts times.

    make_dcp_checkpoint.py OUT_DIR

Saved with torch's own torch.distributed.checkpoint (torch 1.13: torch.distributed._shard.checkpoint)
by 8 gloo processes on CPU, one `__<rank>_0.distcp` file per rank (single_file_per_rank=True,
torch 2.x's default): four float32 ShardedTensors of 16384 x 8192 chunked over the 8 ranks by
rows (64 MiB per rank each, so 256 MiB per shard file), plus a plain tensor and a step that rank 0
writes. Prints the files and their sizes as JSON; writes OUT_DIR.done last.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "python"))
from make_sharded import free_port  # noqa: E402  (also patches torch 1.13's dataclasses for Python 3.11)

import torch  # noqa: E402

WORLD = 8
TENSORS = 4
ROWS, COLS = 16384, 8192


def worker(rank, world, out, port):
    import torch.distributed as dist
    import torch.distributed._shard.checkpoint as dcp
    from torch.distributed._shard import sharded_tensor
    from torch.distributed._shard.sharding_spec import ChunkShardingSpec

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)  # 8 processes on a small machine: one thread each
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(rank)
    by_rows = ChunkShardingSpec(dim=0, placements=[f"rank:{r}/cpu" for r in range(world)])
    state = {}
    for i in range(TENSORS):
        tensor = sharded_tensor.empty(by_rows, ROWS, COLS)
        tensor.local_shards()[0].tensor.normal_()
        state[f"layers.{i}.weight"] = tensor
    state["head.bias"] = torch.zeros(COLS)
    state["step"] = 1000
    dcp.save_state_dict(state, dcp.FileSystemWriter(out, single_file_per_rank=True))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    import torch.multiprocessing as mp

    out = sys.argv[1]
    shutil.rmtree(out, ignore_errors=True)
    if os.path.exists(out + ".done"):
        os.remove(out + ".done")
    os.makedirs(out)
    mp.spawn(worker, args=(WORLD, out, free_port()), nprocs=WORLD)
    files = {name: os.path.getsize(os.path.join(out, name)) for name in sorted(os.listdir(out))}
    with open(out + ".done", "w") as f:
        json.dump(files, f)
    print(json.dumps(files))
