"""Completion markers: a small JSON file that says a unit of work finished and names, sizes
and hashes what it produced, so a restarted job skips what is done. The protocol, shared
with the TypeScript side, is docs/markers.md."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import socket
import stat
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._atomic import PathLike, fsync_directory, write_atomically
from ._cli import verify_files
from ._errors import CkptguardError

MARKER_VERSION = 1
MARKERS_DIR = ".done"
DIR_ENV = "CKPTGUARD_DIR"
# Files `verify=True` hands to `ckptguard verify`, as the TypeScript side's CheckpointManifest
# does. A `.distcp` shard is only whole as part of its directory, whose `.metadata` torch writes
# after every rank has marked its shard, so shards get the hash alone.
CHECKPOINT_EXTENSIONS = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")
_UNIT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")
_HASH_CHUNK = 8 << 20
# A marker is a few hundred bytes per output; anything larger is not one (as marker-file.ts).
_MAX_MARKER_BYTES = 16 << 20


def marker_path(unit: str, *, directory: Optional[PathLike] = None) -> str:
    """``<directory>/.done/<unit>.done``; ``directory`` defaults to ``$CKPTGUARD_DIR``."""
    if not isinstance(unit, str) or len(unit) > 200 or not _UNIT.match(unit):
        raise ValueError(f"unit must be 1-200 characters of letters, digits, _ . - in /-separated parts, "
                         f"each not starting with '.' or '-', got {unit!r} ({type(unit).__name__})")
    return os.path.join(_run_directory(directory), MARKERS_DIR, *unit.split("/")) + ".done"


def mark_done(unit: str, outputs: Sequence[PathLike], *, directory: Optional[PathLike] = None,
              worker: Optional[str] = None, verify: bool = False) -> str:
    """Records that ``unit`` finished, producing ``outputs``; returns the marker's path.

    Each output must be a regular file; it is fsynced (with its directory) so the marker can
    never outlive it after a power cut, then measured and hashed (SHA-256). With
    ``verify=True`` the outputs with a checkpoint extension (.pt .pth .ckpt .bin .safetensors;
    not .distcp shards, which only verify as a whole directory) are checked by
    ``ckptguard verify`` first (CLI on PATH), and a rejected one raises CkptguardError without
    writing the marker. The marker
    ``{"version": 1, "unit", "outputs": [{"path", "size", "sha256"}], "time", "worker"}`` is
    written atomically; output paths inside ``directory`` are stored relative to it.
    ``worker`` defaults to ``<hostname>:<pid>``. Marking a unit again replaces its marker.
    """
    path = marker_path(unit, directory=directory)
    base = _run_directory(directory)
    files = [os.path.abspath(os.fspath(output)) for output in outputs]
    if len(set(files)) != len(files):
        raise ValueError(f"outputs of {unit!r} name a file twice: {[os.fspath(o) for o in outputs]}")
    if verify:
        checkpoints = [f for f in files if f.endswith(CHECKPOINT_EXTENSIONS)]
        if checkpoints:
            verify_files(checkpoints)
    entries = [_describe_output(f, base) for f in files]
    for parent in sorted({os.path.dirname(f) for f in files}):
        fsync_directory(parent)
    marker = {
        "version": MARKER_VERSION,
        "unit": unit,
        "outputs": entries,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "worker": worker if worker is not None else f"{socket.gethostname()}:{os.getpid()}",
    }
    data = (json.dumps(marker, indent=2) + "\n").encode("utf-8")
    _make_directories(os.path.dirname(path))
    return write_atomically(path, lambda f: f.write(data))


def read_marker(unit: str, *, directory: Optional[PathLike] = None) -> Optional[Dict[str, Any]]:
    """The parsed marker of ``unit``, or None when it is absent or not a well-formed version-1
    marker of this unit. Raises CkptguardError ``FUTURE_VERSION`` for a newer version."""
    path = marker_path(unit, directory=directory)
    try:
        # O_NONBLOCK and a regular-file check: a FIFO, or a symlink to /dev/zero, in place of a
        # marker must read as "not done", not block or fill memory.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_MARKER_BYTES:
                return None
            marker = json.loads(f.read(_MAX_MARKER_BYTES + 1).decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict):
        return None
    version = marker.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > MARKER_VERSION:
        raise CkptguardError("FUTURE_VERSION", f"completion marker version {version} is newer than this "
                             f"reader's {MARKER_VERSION}; upgrade ckptguard", path=path)
    return marker if version == MARKER_VERSION and marker.get("unit") == unit and _outputs_well_formed(marker) else None


def is_done(unit: str, *, directory: Optional[PathLike] = None, check_hashes: bool = False) -> bool:
    """True when ``unit`` has a valid marker and every output it lists still exists as a
    regular file of the recorded size (and, with ``check_hashes=True``, the recorded SHA-256:
    reads every byte). A missing, malformed or stale marker means the unit must be redone."""
    marker = read_marker(unit, directory=directory)
    if marker is None:
        return False
    base = _run_directory(directory)
    for output in marker["outputs"]:
        file = os.path.join(base, output["path"])
        try:
            info = os.stat(file)
            if not stat.S_ISREG(info.st_mode) or info.st_size != output["size"]:
                return False
            if check_hashes and _sha256(file)[1] != output["sha256"]:
                return False
        except OSError:
            return False
    return True


def _run_directory(directory: Optional[PathLike]) -> str:
    if directory is not None:
        return os.fspath(directory)
    from_env = os.environ.get(DIR_ENV)
    if not from_env:
        raise ValueError(f"no directory for completion markers: pass directory=, or run under `ckptguard run` (which sets {DIR_ENV})")
    return from_env


def _describe_output(file: str, base: str) -> Dict[str, Any]:
    # O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever.
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"output {file} is not a regular file")
        os.fsync(fd)
    finally:
        os.close(fd)
    size, digest = _sha256(file)
    relative = os.path.relpath(file, os.path.abspath(base))
    inside = relative != os.pardir and not relative.startswith(os.pardir + os.sep)
    return {"path": relative.replace(os.sep, "/") if inside else file, "size": size, "sha256": digest}


def _sha256(file: str) -> Tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(file, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _outputs_well_formed(marker: Dict[str, Any]) -> bool:
    outputs = marker.get("outputs")
    return isinstance(outputs, list) and all(
        isinstance(o, dict) and isinstance(o.get("path"), str) and o["path"] != ""
        and (os.path.isabs(o["path"]) or all(part not in ("", ".", "..") for part in o["path"].split("/")))
        and isinstance(o.get("size"), int) and isinstance(o.get("sha256"), str) for o in outputs)


def _make_directories(directory: str) -> None:
    """makedirs, fsyncing each parent whose listing gained a directory."""
    missing: List[str] = []
    current = directory
    while not os.path.isdir(current):
        missing.append(current)
        current = os.path.dirname(current)
    for created in reversed(missing):
        try:
            os.mkdir(created)
        except FileExistsError:
            continue
        fsync_directory(os.path.dirname(created) or ".")
