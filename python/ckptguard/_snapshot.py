"""A CPU copy of a checkpoint object, taken on the caller's thread so a background write
sees the values of the moment save() was called, not those of later training steps."""
from __future__ import annotations

import copy
import mmap
import sys
from typing import Any, Dict, Hashable, Iterator

# Storages at least this big are copied into memory mapped and faulted in ahead (see _new_bytes).
_PREFAULT_MIN_BYTES = 4 << 20
# madvise(2) MADV_POPULATE_WRITE (Linux >= 5.14): fault a whole range in with one call.
_MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if sys.platform.startswith("linux") else None)


def snapshot_to_cpu(obj: Any) -> Any:
    """A deep copy of ``obj`` whose tensors live in new CPU memory.

    Storage sharing is kept: tensors that view one storage (tied weights, whose state_dict
    entries are distinct tensors over the same storage) view one copied storage, so
    torch.save of the snapshot writes the same storages as torch.save of ``obj`` would.
    Tensors are found in dicts, lists, tuples and sets; a tensor held inside another kind of
    object is deep-copied by torch on its own device, which is still a consistent snapshot.
    """
    copied_storages: Dict[Hashable, Any] = {}
    memo: Dict[int, Any] = {}
    for tensor in _tensors_in(obj):
        if id(tensor) not in memo:
            memo[id(tensor)] = _copy_tensor(tensor, copied_storages)
    # deepcopy substitutes the memoized copies for the tensors and copies everything else
    # (containers, numbers, config objects), keeping their types and attributes.
    return copy.deepcopy(obj, memo)


def _tensors_in(obj: Any) -> Iterator[Any]:
    import torch

    seen = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, (dict, list, tuple, set, frozenset)) and id(item) not in seen:
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)


def _copy_tensor(tensor: Any, copied_storages: Dict[Hashable, Any]) -> Any:
    import torch

    plain = type(tensor) in (torch.Tensor, torch.nn.Parameter)
    if not plain or tensor.layout != torch.strided or tensor.is_quantized or tensor.device.type == "meta":
        # Sparse, quantized and subclassed tensors: no storage to share, copied as themselves.
        copied = tensor.detach().to("cpu", copy=True)
    else:
        storage = _untyped_storage(tensor)
        # The key torch.save itself dedups storages by (torch/serialization.py, persistent_id).
        key = (str(storage.device), storage._cdata)
        cpu_storage = copied_storages.get(key)
        if cpu_storage is None:
            cpu_storage = _copy_storage(storage)
            copied_storages[key] = cpu_storage
        copied = torch.empty((0,), dtype=tensor.dtype).set_(
            cpu_storage, tensor.storage_offset(), tensor.size(), tensor.stride())
    if isinstance(tensor, torch.nn.Parameter):
        return torch.nn.Parameter(copied, requires_grad=tensor.requires_grad)
    if tensor.requires_grad:
        copied.requires_grad_(True)
    return copied


def _copy_storage(storage: Any) -> Any:
    """A CPU copy of an untyped storage (on any device), byte for byte."""
    import torch

    source = torch.empty((0,), dtype=torch.uint8, device=storage.device).set_(storage)
    copied = _new_bytes(storage.nbytes())
    copied.copy_(source)
    return _untyped_storage(copied)


def _new_bytes(nbytes: int) -> Any:
    """An uninitialised uint8 CPU tensor of ``nbytes``, its memory faulted in ahead for big ones.

    Copying into fresh memory is dominated by page faults, one per 4 KiB page: on the 2-CPU VM
    of bench/async_save.py a 400 MB copy took 1.3 s into torch.empty's memory and 0.07 s into a
    mapping advised MADV_HUGEPAGE (2 MiB pages where transparent huge pages are enabled) and
    faulted in by one MADV_POPULATE_WRITE. Where either advice is unsupported the copy still
    works, at the slower speed. The mapping is unmapped when the last tensor using it goes.
    """
    import torch

    if nbytes < _PREFAULT_MIN_BYTES:
        return torch.empty((nbytes,), dtype=torch.uint8)
    memory = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for advice in (getattr(mmap, "MADV_HUGEPAGE", None), _MADV_POPULATE_WRITE):
        if advice is not None:
            try:
                memory.madvise(advice)
            except (OSError, ValueError):
                pass  # an older kernel or another OS: the copy faults the pages in instead
    return torch.frombuffer(memory, dtype=torch.uint8)


def _untyped_storage(tensor: Any) -> Any:
    if hasattr(tensor, "untyped_storage"):  # torch >= 2.0
        return tensor.untyped_storage()
    return tensor.storage().untyped()  # torch 1.13: TypedStorage over an UntypedStorage
