"""Training progress for ``ckptguard run``: JSON lines appended to the file it names in
``CKPTGUARD_PROGRESS``, which it reads for its status, dashboard and stall detection."""
from __future__ import annotations

import atexit
import json
import logging
import math
import numbers
import os
import time
import weakref
from typing import Any, Callable, Dict, Optional

from ._atomic import PathLike

logger = logging.getLogger("ckptguard")

PROGRESS_ENV = "CKPTGUARD_PROGRESS"


class Progress:
    """Reports training progress to ``ckptguard run``.

    ``report(step=..., epoch=..., loss=..., **metrics)`` appends one JSON object per line,
    ``{"time": <unix seconds>, "step": 1200, "epoch": 3, "loss": 0.41, "lr": 0.0003}``, to
    ``path`` (default: the file named by ``CKPTGUARD_PROGRESS``) and touches the heartbeat
    file (default ``<path>.heartbeat``; its mtime says the training loop is alive).

    Writes are throttled to one per ``min_interval`` seconds (default 1): a report inside the
    interval is held, and the newest held report is written by the next report after it, by
    ``flush()``, ``close()`` or at interpreter exit. Values are numbers, bools, strings or
    None; a 0-dim tensor or numpy scalar is converted with ``.item()`` when written (only
    then, so a throttled report costs no device sync); NaN and infinities are written as
    ``"nan"``, ``"inf"`` and ``"-inf"`` (JSON has no such numbers).

    Without a path and outside ``ckptguard run`` every call is a no-op (``enabled`` is
    False). Progress never raises for I/O: a failed write is logged once and skipped.
    """

    def __init__(self, path: Optional[PathLike] = None, *, heartbeat: Optional[PathLike] = None,
                 min_interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if path is None:
            path = os.environ.get(PROGRESS_ENV) or None
        self.path: Optional[str] = os.fspath(path) if path is not None else None
        self.heartbeat: Optional[str] = (os.fspath(heartbeat) if heartbeat is not None
                                         else f"{self.path}.heartbeat" if self.path is not None else None)
        if isinstance(min_interval, bool) or not isinstance(min_interval, (int, float)) or min_interval < 0:
            raise ValueError(f"min_interval must be a number of seconds >= 0, got {min_interval!r} ({type(min_interval).__name__})")
        self.min_interval = float(min_interval)
        self._clock = clock
        self._last_write: Optional[float] = None
        self._held: Optional[Dict[str, Any]] = None
        self._warned = False
        if self.enabled:
            atexit.register(_flush_at_exit, weakref.ref(self))

    @property
    def enabled(self) -> bool:
        """True when reports go somewhere."""
        return self.path is not None

    def report(self, step: Optional[int] = None, epoch: Optional[float] = None, loss: Optional[float] = None,
               **metrics: Any) -> bool:
        """Records the training position and metrics; returns True when a line was written now."""
        if not self.enabled:
            return False
        values: Dict[str, Any] = {"step": step, "epoch": epoch, "loss": loss, **metrics}
        record = {key: value for key, value in values.items() if value is not None}
        for key, value in record.items():
            _check_value(key, value)
        record["time"] = time.time()
        now = self._clock()
        if self._last_write is not None and now - self._last_write < self.min_interval:
            self._held = record
            return False
        self._held = None
        self._write(record, now)
        return True

    def flush(self) -> None:
        """Writes the report held back by the throttle, if any."""
        if self._held is not None:
            record, self._held = self._held, None
            self._write(record, self._clock())

    def close(self) -> None:
        """Flushes; the object may still be used afterwards."""
        self.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _write(self, record: Dict[str, Any], now: float) -> None:
        assert self.path is not None and self.heartbeat is not None
        self._last_write = now
        line = json.dumps({"time": round(record.pop("time"), 3), **{k: _plain(v) for k, v in record.items()}},
                          allow_nan=False)
        try:
            # One write(2) with O_APPEND: lines from several processes never interleave.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)
            _touch(self.heartbeat)
        except OSError as error:
            if not self._warned:
                self._warned = True
                logger.warning("cannot write progress to %s: %s (further failures are not logged)", self.path, error)


def _flush_at_exit(ref: "weakref.ReferenceType[Progress]") -> None:
    progress = ref()
    if progress is not None:
        progress.flush()


def _check_value(key: str, value: Any) -> None:
    if isinstance(value, (str, bool, numbers.Number)) or _is_scalar_like(value):
        return
    raise TypeError(f"progress value {key}= must be a number, bool, string or None (or a 0-dim tensor), "
                    f"got {type(value).__name__}: {value!r:.80}")


def _is_scalar_like(value: Any) -> bool:
    # torch tensors and numpy scalars/arrays of one element; neither library is imported here.
    return hasattr(value, "item") and getattr(value, "numel", lambda: getattr(value, "size", 1))() == 1


def _plain(value: Any) -> Any:
    if _is_scalar_like(value) and not isinstance(value, (str, bool, int, float)):
        value = value.item()
    if isinstance(value, (str, int)):  # bool is an int
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return "nan"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return number
    return str(value)  # complex numbers


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except FileNotFoundError:
        with open(path, "a"):
            pass
