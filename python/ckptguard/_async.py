"""Checkpoint writes off the training thread: the caller pays for a CPU copy, a background
thread pays for serialization, fsync and verification."""
from __future__ import annotations

import collections
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Deque, Dict, Optional, Tuple

from ._atomic import PathLike, atomic_save
from ._cli import find_cli
from ._snapshot import snapshot_to_cpu

logger = logging.getLogger("ckptguard")

# One lock per target path for the whole process, so that two writers (or two
# AsyncCheckpointWriter instances) never write the same path at the same time.
_path_locks: Dict[str, threading.Lock] = {}
_path_locks_guard = threading.Lock()


def _path_lock(path: str) -> threading.Lock:
    key = os.path.realpath(path)
    with _path_locks_guard:
        return _path_locks.setdefault(key, threading.Lock())


class AsyncCheckpointWriter:
    """Saves checkpoints in a background thread with :func:`atomic_save`.

    ``save(obj, path)`` copies every tensor of ``obj`` to new CPU memory on the calling
    thread (so later in-place updates by the optimizer cannot leak into the file) and
    returns; one background thread then writes the copies in the order they were given, so
    the last save to a path wins and no two writes to one path ever overlap (a process-wide
    lock per path also keeps two writers apart).

    ``max_pending`` bounds the copies held in memory (queued or being written): a save() that
    would exceed it first waits for the oldest write to finish. A failed background save is
    logged when it fails and re-raised, as the original exception, by the next call to
    ``save``, ``wait`` or ``close``. Writes still pending when the interpreter exits are
    finished first.

    Use it as a context manager, or call ``close()`` at the end of training::

        with AsyncCheckpointWriter() as writer:
            for step in ...:
                ...
                writer.save({"model": model.state_dict(), "step": step}, f"ckpt/step_{step}.pt")
    """

    def __init__(self, max_pending: int = 1, *, verify: bool = False, keep_failed: bool = False) -> None:
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an integer >= 1, got {max_pending!r} ({type(max_pending).__name__})")
        if verify:
            find_cli()  # CLI_NOT_FOUND now, not on the save after the first one fails
        self.max_pending = max_pending
        self.verify = verify
        self.keep_failed = keep_failed
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ckptguard-writer")
        self._pending: Deque[Tuple[str, "Future[str]"]] = collections.deque()
        self._failures: Deque[BaseException] = collections.deque()
        self._lock = threading.Lock()
        self._closed = False

    def save(self, obj: Any, path: PathLike) -> "Future[str]":
        """Snapshots ``obj`` to CPU memory and queues its atomic write to ``path``.

        Returns a Future resolving to the path once the file is in place. Raises the failure
        of an earlier save first, if there was one; ValueError after ``close()``.
        """
        self._raise_failure()
        if self._closed:
            raise ValueError("AsyncCheckpointWriter.save() after close()")
        path = os.fspath(path)
        self._wait_until_fewer_than(self.max_pending)
        self._raise_failure()  # a write that failed while we waited
        snapshot = snapshot_to_cpu(obj)
        future = self._executor.submit(self._write, snapshot, path)
        with self._lock:
            self._pending.append((path, future))
        future.add_done_callback(self._on_done)
        return future

    def wait(self) -> None:
        """Blocks until every queued write is done; re-raises a failed one."""
        self._wait_until_fewer_than(1)
        self._raise_failure()

    def close(self) -> None:
        """Waits for the queued writes, stops the thread; re-raises a failed write. Idempotent."""
        if not self._closed:
            self._closed = True
            self._executor.shutdown(wait=True)
        self._raise_failure()

    @property
    def pending(self) -> int:
        """Writes queued or in progress."""
        with self._lock:
            return sum(1 for _, future in self._pending if not future.done())

    def __enter__(self) -> "AsyncCheckpointWriter":
        return self

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException], tb: Any) -> None:
        if exc is None:
            self.close()
            return
        # Already failing: finish the writes but let the original exception propagate.
        self._closed = True
        self._executor.shutdown(wait=True)

    def _write(self, snapshot: Any, path: str) -> str:
        with _path_lock(path):
            return atomic_save(snapshot, path, verify=self.verify, keep_failed=self.keep_failed)

    def _on_done(self, future: "Future[str]") -> None:
        with self._lock:
            entry = next((e for e in self._pending if e[1] is future), None)
            if entry is None:
                return  # already handled: called both as a callback and by a waiter
            self._pending.remove(entry)
            error = future.exception()
            if error is not None:
                self._failures.append(error)
        if error is not None:
            logger.error("background save of %s failed: %s: %s (re-raised by the next writer call)",
                         entry[0], type(error).__name__, error)
            if hasattr(error, "add_note"):  # Python 3.11+
                error.add_note(f"ckptguard: raised by AsyncCheckpointWriter's background save of {entry[0]}")

    def _wait_until_fewer_than(self, limit: int) -> None:
        while True:
            with self._lock:
                if len(self._pending) < limit:
                    return
                oldest = self._pending[0][1]
            try:
                oldest.result()
            except BaseException:  # recorded by _on_done, raised by the caller's next check
                pass
            # result() may return before the done-callback has run; _on_done runs once either way.
            self._on_done(oldest)

    def _raise_failure(self) -> None:
        with self._lock:
            error = self._failures.popleft() if self._failures else None
        if error is not None:
            raise error
