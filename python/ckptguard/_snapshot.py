"""A CPU copy of a checkpoint object, taken on the caller's thread so a background write
sees the values of the moment save() was called, not those of later training steps."""
from __future__ import annotations

import copy
import mmap
import sys
from typing import Any, Dict, Hashable, Iterator, List

# Start of each storage copy inside the one mapping: the alignment torch's CPU allocator gives.
_ALIGNMENT = 64
# madvise(2) MADV_POPULATE_WRITE (Linux >= 5.14): fault a whole range in with one call.
_MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if sys.platform.startswith("linux") else None)


def snapshot_to_cpu(obj: Any) -> Any:
    """A deep copy of ``obj`` whose tensors live in new CPU memory.

    Storage sharing is kept: tensors that view one storage (tied weights, whose state_dict
    entries are distinct tensors over the same storage) view one copied storage, so
    torch.save of the snapshot writes the same storages as torch.save of ``obj`` would.
    Tensors are found in dicts, lists, tuples and sets; a tensor held inside another kind of
    object is deep-copied by torch on its own device, which is still a consistent snapshot.
    The copies of all storages share one memory mapping, released when the last of them goes.
    """
    tensors = list({id(t): t for t in _tensors_in(obj)}.values())
    storages: Dict[Hashable, Any] = {}
    for tensor in tensors:
        if _has_plain_storage(tensor):
            storage = _untyped_storage(tensor)
            # The key torch.save itself dedups storages by (torch/serialization.py, persistent_id).
            storages.setdefault((str(storage.device), storage._cdata), storage)
    copies = dict(zip(storages, _copy_storages(list(storages.values()))))
    memo: Dict[int, Any] = {id(t): _copy_tensor(t, copies) for t in tensors}
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


def _has_plain_storage(tensor: Any) -> bool:
    import torch

    return (type(tensor) in (torch.Tensor, torch.nn.Parameter) and tensor.layout == torch.strided
            and not tensor.is_quantized and tensor.device.type != "meta")


def _copy_tensor(tensor: Any, copies: Dict[Hashable, Any]) -> Any:
    import torch

    if _has_plain_storage(tensor):
        storage = _untyped_storage(tensor)
        copied = torch.empty((0,), dtype=tensor.dtype).set_(
            copies[(str(storage.device), storage._cdata)], tensor.storage_offset(), tensor.size(), tensor.stride())
    else:
        # Sparse, quantized and subclassed tensors: no storage to share, copied as themselves.
        copied = tensor.detach().to("cpu", copy=True)
    if isinstance(tensor, torch.nn.Parameter):
        return torch.nn.Parameter(copied, requires_grad=tensor.requires_grad)
    if tensor.requires_grad:
        copied.requires_grad_(True)
    return copied


def _copy_storages(storages: List[Any]) -> List[Any]:
    """CPU copies of untyped storages (on any device), byte for byte, each its own storage."""
    import torch

    offsets = []
    total = 0
    for storage in storages:
        offsets.append(total)
        total += -(-storage.nbytes() // _ALIGNMENT) * _ALIGNMENT
    memory = _prefaulted_memory(total) if total else None
    copies = []
    for storage, offset in zip(storages, offsets):
        nbytes = storage.nbytes()
        if nbytes == 0:
            copies.append(_untyped_storage(torch.empty((0,), dtype=torch.uint8)))
            continue
        # frombuffer gives each copy a storage of its own over its slice of the mapping.
        copied = torch.frombuffer(memory, dtype=torch.uint8, count=nbytes, offset=offset)
        copied.copy_(torch.empty((0,), dtype=torch.uint8, device=storage.device).set_(storage))
        copies.append(_untyped_storage(copied))
    return copies


def _prefaulted_memory(nbytes: int) -> mmap.mmap:
    """Anonymous memory of ``nbytes``, faulted in ahead where the kernel can.

    Copying into fresh memory is dominated by page faults, one per 4 KiB page: on the 2-CPU VM
    of bench/async_save.py a 400 MB copy took 1.3 s into torch.empty's memory and 0.07 s into a
    mapping advised MADV_HUGEPAGE (2 MiB pages where transparent huge pages are enabled) and
    faulted in by one MADV_POPULATE_WRITE. Where either advice is unsupported the copy still
    works, at the slower speed.
    """
    memory = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for advice in (getattr(mmap, "MADV_HUGEPAGE", None), _MADV_POPULATE_WRITE):
        if advice is not None:
            try:
                memory.madvise(advice)
            except (OSError, ValueError):
                pass  # an older kernel or another OS: the copy faults the pages in instead
    return memory


def _untyped_storage(tensor: Any) -> Any:
    if hasattr(tensor, "untyped_storage"):  # torch >= 2.0
        return tensor.untyped_storage()
    return tensor.storage().untyped()  # torch 1.13: TypedStorage over an UntypedStorage
