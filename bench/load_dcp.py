"""torch's own load of a torch.distributed.checkpoint directory, timed in this process: the peer
of `ckptguard verify DIR` in bench/verify-dcp.ts.

    load_dcp.py DIR RUNS

torch 1.13's load_state_dict(no_dist=True) reads a DCP save in a single process, without a
process group, into plain tensors of each key's full size (resharding every rank's chunks into
one tensor): every byte of every shard is read, as a resume on one node would. Prints each run's
seconds, then the median, then the peak RSS in bytes.
"""
import gc
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "python"))
import make_sharded  # noqa: E402,F401  (patches torch 1.13's dataclasses for Python 3.11)

import torch  # noqa: E402
import torch.distributed._shard.checkpoint as dcp  # noqa: E402
from torch.distributed._shard.checkpoint.metadata import TensorStorageMetadata  # noqa: E402


def load(path):
    reader = dcp.FileSystemReader(path)
    metadata = reader.read_metadata()
    state = {}
    for key, md in metadata.state_dict_metadata.items():
        state[key] = torch.empty(md.size, dtype=md.properties.dtype) if isinstance(md, TensorStorageMetadata) else None
    dcp.load_state_dict(state, reader, no_dist=True)
    return state


if __name__ == "__main__":
    path, runs = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        state = load(path)
        times.append(time.perf_counter() - started)
        del state
        gc.collect()
    print(" ".join(f"{t:.3f}" for t in times))
    print(statistics.median(times))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
