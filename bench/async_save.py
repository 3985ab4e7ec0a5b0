#!/usr/bin/env python3
"""How long a checkpoint save blocks training: plain torch.save, atomic_save, and
AsyncCheckpointWriter.save(), on the ~1.5 GB GPT-2-small + AdamW checkpoint.

    /usr/bin/python3 bench/async_save.py [CHECKPOINT] [--runs 3]

CHECKPOINT defaults to bench/tmp/gpt2.pt (`npm run bench` writes it, or
`/usr/bin/python3 bench/make_gpt2_checkpoint.py bench/tmp/gpt2.pt`). It is loaded with
torch.load onto the CPU, then saved RUNS times each way into bench/tmp/async-save/; before
every run os.sync() empties the page cache's dirty pages so that no run pays for the
writeback of the one before. Prints medians in seconds:

- blocked: how long the training thread waits in the call;
- done: until the checkpoint is on disk (for plain torch.save, the same as blocked, but
  without an fsync the data may still be only in the page cache).

AsyncCheckpointWriter's first save is reported apart from the later ones: its snapshot may go
to memory the kernel has not handed out before, whose first faults cost far more on a VM.
"""
import argparse
import os
import resource
import shutil
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "python"))
from ckptguard import AsyncCheckpointWriter, atomic_save  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default=os.path.join(HERE, "tmp", "gpt2.pt"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not os.path.exists(args.checkpoint):
        sys.exit(f"{args.checkpoint} is missing: run /usr/bin/python3 bench/make_gpt2_checkpoint.py {args.checkpoint}")
    out_dir = os.path.join(HERE, "tmp", "async-save")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    target = os.path.join(out_dir, "ckpt.pt")

    load_s, state = timed(lambda: torch.load(args.checkpoint, map_location="cpu"))
    size = os.path.getsize(args.checkpoint)
    print(f"checkpoint {args.checkpoint}: {size / 1e9:.2f} GB, torch.load {load_s:.2f} s; torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, {args.runs} runs each")

    results = {}

    def record(name, blocked, done):
        results.setdefault(name, {"blocked": [], "done": []})
        results[name]["blocked"].append(blocked)
        results[name]["done"].append(done)

    for _ in range(args.runs):
        os.sync()
        blocked, _ = timed(lambda: torch.save(state, target))
        record("torch.save(obj, path), no fsync", blocked, blocked)
        os.sync()
        blocked, _ = timed(lambda: atomic_save(state, target))
        record("atomic_save (fsync, rename)", blocked, blocked)

    # One writer for a run's saves, as in a long run: the first, then the steady state.
    with AsyncCheckpointWriter() as writer:
        for run in range(args.runs + 1):
            os.sync()
            start = time.perf_counter()
            writer.save(state, target)
            blocked = time.perf_counter() - start
            writer.wait()
            done = time.perf_counter() - start
            record("AsyncCheckpointWriter.save(), 1st" if run == 0 else "AsyncCheckpointWriter.save(), later", blocked, done)

    if os.path.getsize(target) != size:
        print(f"note: the saved file is {os.path.getsize(target)} bytes, the source {size}")
    baseline = statistics.median(results["torch.save(obj, path), no fsync"]["blocked"])
    print(f"{'':42} {'blocked':>9} {'done':>9} {'blocked vs torch.save':>22}")
    for name, times in results.items():
        blocked = statistics.median(times["blocked"])
        done = statistics.median(times["done"])
        print(f"{name:42} {blocked:8.2f}s {done:8.2f}s {blocked / baseline:21.2f}x")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB "
          f"(the loaded state plus one CPU snapshot)")
    shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
