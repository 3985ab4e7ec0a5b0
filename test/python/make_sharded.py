"""Writes real sharded checkpoints for ckptguard's tests.

    make_sharded.py OUT_DIR dcp|hf [dcp|hf]

dcp: torch.distributed.checkpoint as torch 1.13 has it (torch.distributed._shard.checkpoint),
     saved by 2 processes on gloo/CPU. 1.13's DCP shards only ShardedTensors (plain tensors and
     other values are written by the coordinator, rank 0), so the state dict holds ShardedTensors
     chunked over both ranks (one with three chunks, two of them on rank 0), a plain tensor, a
     0-d tensor and non-tensor values.
       OUT/dcp/          one .distcp file per write item (FileSystemWriter's 1.13 default)
       OUT/dcp-single/   single_file_per_rank=True: several torch.save streams per file
       OUT/dcp-train/    a training save: {model, optimizer (AdamW after one step), step, w (sharded)}
       OUT/dcp-unsafe/   dcp/ whose .metadata pickle also carries a planner_data object whose
                         __reduce__ is os.system (pickle.load of it would run a command)
       OUT/dcp-overlap/  dcp/ whose metadata says w's second chunk starts at row 2 (rows 2-3 twice)
       OUT/dcp-hole/     dcp/ whose metadata says the tensor has 10 rows (rows 8-9 never saved)
       OUT/dcp-escape/   dcp/ whose metadata puts one item in ../outside.distcp
hf:  Hugging Face-style sharded weights of a small model, as transformers' save_pretrained
     lays them out (shards in state_dict order, an index with metadata.total_size and weight_map).
       OUT/hf-safetensors/  model.safetensors.index.json + model-0000i-of-00003.safetensors
                            (written byte for byte as safetensors' serializer does: u64 header
                            length, JSON header padded with spaces to 8 bytes, raw buffer)
       OUT/hf-bin/          pytorch_model.bin.index.json + pytorch_model-0000i-of-00002.bin (torch.save)
       OUT/hf-bin-unsafe/   hf-bin/ whose second shard also pickles an os.system __reduce__
Prints a JSON summary (keys, shapes) on stdout.
"""
import copy
import dataclasses
import json
import os
import pickle
import shutil
import socket
import struct
import sys


def allow_mutable_dataclass_defaults():
    """torch 1.13's torch/distributed/_shard/sharded_tensor/metadata.py declares
    `tensor_properties: TensorProperties = field(default=TensorProperties())`, which Python 3.11
    refuses (an unhashable dataclass instance as a default). torch 1.13 predates 3.11; turning
    such defaults into default_factory copies is what later torch versions did in the source."""
    original = dataclasses._get_field

    def get_field(cls, name, type_, *rest):
        default = cls.__dict__.get(name, dataclasses.MISSING)
        if isinstance(default, dataclasses.Field):
            default = default.default
        if dataclasses.is_dataclass(default) and not isinstance(default, type) and type(default).__hash__ is None:
            setattr(cls, name, dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d)))
        return original(cls, name, type_, *rest)

    dataclasses._get_field = get_field


allow_mutable_dataclass_defaults()

import torch  # noqa: E402


class RunsCommand:
    """Pickles as os.system("echo pwned"): what a malicious checkpoint plants."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


# ----------------------------------------------------------------------------- DCP

def dcp_worker(rank, world, out, port):
    import torch.distributed as dist
    import torch.distributed._shard.checkpoint as dcp
    from torch.distributed._shard import sharded_tensor
    from torch.distributed._shard.sharding_spec import ChunkShardingSpec

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(1234)  # the same on every rank: plain tensors agree
    two_ranks = ChunkShardingSpec(dim=0, placements=[f"rank:{r}/cpu" for r in range(world)])
    three_chunks = ChunkShardingSpec(dim=1, placements=["rank:0/cpu", "rank:1/cpu", "rank:0/cpu"])
    state = {
        "w": sharded_tensor.rand(two_ranks, 8, 3),
        "emb": sharded_tensor.rand(two_ranks, 5, 4, dtype=torch.float64),
        "proj": sharded_tensor.rand(three_chunks, 2, 9),
        "bias": torch.arange(4, dtype=torch.float32),
        "scale": torch.tensor(0.5),
        "step": 7,
        "config": {"lr": 0.001, "name": "tiny"},
    }
    dcp.save_state_dict(state, dcp.FileSystemWriter(os.path.join(out, "dcp")))
    dcp.save_state_dict(state, dcp.FileSystemWriter(os.path.join(out, "dcp-single"), single_file_per_rank=True))
    # A training save as 1.13 writes one: nested dicts are not flattened, so the model and
    # optimizer state_dicts are bytes entries (torch.save streams) beside the sharded tensor.
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.001)
    model(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    training = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 7, "w": state["w"]}
    dcp.save_state_dict(training, dcp.FileSystemWriter(os.path.join(out, "dcp-train")))
    dist.barrier()
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dcp_variant(out, name, edit):
    shutil.copytree(os.path.join(out, "dcp"), os.path.join(out, name))
    path = os.path.join(out, name, ".metadata")
    with open(path, "rb") as f:
        metadata = pickle.load(f)
    edit(metadata)
    with open(path, "wb") as f:
        pickle.dump(metadata, f)


def make_dcp(out):
    import torch.multiprocessing as mp
    from torch.distributed._shard.checkpoint.metadata import ChunkStorageMetadata

    mp.spawn(dcp_worker, args=(2, out, free_port()), nprocs=2)

    def add_unsafe(md):
        md.planner_data = RunsCommand()

    def overlap(md):
        second = md.state_dict_metadata["w"].chunks[1]
        md.state_dict_metadata["w"].chunks[1] = ChunkStorageMetadata(offsets=torch.Size([2, 0]), sizes=second.sizes)

    def hole(md):
        md.state_dict_metadata["w"].size = torch.Size([10, 3])

    def escape(md):
        info = next(v for k, v in md.storage_data.items() if k.fqn == "bias")
        info.relative_path = "../outside.distcp"

    dcp_variant(out, "dcp-unsafe", add_unsafe)
    dcp_variant(out, "dcp-overlap", overlap)
    dcp_variant(out, "dcp-hole", hole)
    dcp_variant(out, "dcp-escape", escape)
    with open(os.path.join(out, "dcp", ".metadata"), "rb") as f:
        md = pickle.load(f)
    return {
        "entries": {k: (list(v.size) if hasattr(v, "size") else "bytes") for k, v in md.state_dict_metadata.items()},
        "chunks": {k: len(v.chunks) for k, v in md.state_dict_metadata.items() if hasattr(v, "chunks")},
        "files": sorted({v.relative_path for v in md.storage_data.values()}),
        "single_files": sorted(n for n in os.listdir(os.path.join(out, "dcp-single")) if n.endswith(".distcp")),
    }


# ----------------------------------------------------------------------------- HF

SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


def small_model_state():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Embedding(16, 8),
        torch.nn.Linear(8, 8),
        torch.nn.LayerNorm(8),
        torch.nn.Linear(8, 4),
    )
    state = {f"model.layers.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    state["model.position_ids"] = torch.arange(6, dtype=torch.int64)
    state["lm_head.weight"] = torch.randn(16, 8).half()
    return state


def split(state, parts):
    names = list(state)
    size = -(-len(names) // parts)
    return [names[i:i + size] for i in range(0, len(names), size)]


def write_sharded(state, directory, parts, prefix, ext, save):
    os.makedirs(directory)
    weight_map, total = {}, 0
    groups = split(state, parts)
    for i, names in enumerate(groups, start=1):
        shard = f"{prefix}-{i:05d}-of-{len(groups):05d}.{ext}"
        save({n: state[n] for n in names}, os.path.join(directory, shard))
        for n in names:
            weight_map[n] = shard
            total += state[n].numel() * state[n].element_size()
    with open(os.path.join(directory, f"{prefix}.{ext}.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
    return weight_map


def make_hf(out):
    state = small_model_state()
    st_map = write_sharded(state, os.path.join(out, "hf-safetensors"), 3, "model", "safetensors", save_safetensors)
    bin_map = write_sharded(state, os.path.join(out, "hf-bin"), 2, "pytorch_model", "bin", lambda d, p: torch.save(d, p))
    shutil.copytree(os.path.join(out, "hf-bin"), os.path.join(out, "hf-bin-unsafe"))
    second = os.path.join(out, "hf-bin-unsafe", "pytorch_model-00002-of-00002.bin")
    tensors = torch.load(second)
    tensors["_payload"] = RunsCommand()
    torch.save(tensors, second)
    return {"safetensors_weight_map": st_map, "bin_weight_map": bin_map}


if __name__ == "__main__":
    out_dir = sys.argv[1]
    summary = {}
    if "dcp" in sys.argv[2:]:
        summary["dcp"] = make_dcp(out_dir)
    if "hf" in sys.argv[2:]:
        summary["hf"] = make_hf(out_dir)
    print(json.dumps(summary))
