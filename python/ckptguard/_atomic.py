"""Atomic file replacement: the bytes at a path are always the old file or the new one,
never a mix, whatever happens during the write (an exception, Ctrl-C, a full disk, SIGKILL,
a power cut)."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import stat
import tempfile
import threading
import time
from typing import IO, Any, Callable, Iterator, List, Optional, Union

from ._cli import find_cli, verify_files

PathLike = Union[str, "os.PathLike[str]"]
logger = logging.getLogger("ckptguard")

_umask_lock = threading.Lock()


def atomic_save(obj: Any, path: PathLike, *, verify: bool = False, keep_failed: bool = False) -> str:
    """``torch.save(obj, path)``, atomically.

    The checkpoint is written to a temp file in the same directory (``.NAME.PID.XXXX.tmp``,
    a name ckptguard never takes for a checkpoint), flushed and fsynced; with ``verify=True``
    it is checked by ``ckptguard verify`` (the CLI must be on PATH: CkptguardError
    ``CLI_NOT_FOUND`` before anything is written otherwise); then it is renamed over ``path``
    and the directory is fsynced, so the rename survives a power cut.

    On any failure, including KeyboardInterrupt, a full disk and a rejected verification, the
    previous file at ``path`` is untouched and the temp file removed; with ``keep_failed=True``
    the temp file is moved aside to ``PATH.failed-<UTC time>-XXXX.tmp`` for inspection
    (logged, and set as ``failed_path`` on a CkptguardError). The exception is re-raised.
    A process killed outright (SIGKILL, power loss) leaves ``path`` as it was and its temp file
    behind; the next save to ``path`` removes such temp files of processes that no longer run.

    Returns ``path`` as a string.
    """
    import torch  # imported here so that Progress, markers and latest_checkpoint need no torch

    def save(f: IO[bytes]) -> None:
        guarded = _GuardedFile(f)
        with _interrupt_deferred_to(guarded):
            torch.save(obj, guarded)
        if guarded.failure is not None:
            raise guarded.failure

    return write_atomically(path, save, verify=verify, keep_failed=keep_failed)


class _GuardedFile:
    """The file torch.save writes to, which never lets a write fail inside torch.

    torch's zip writer (1.13, caffe2/serialize/inline_container.cc) cannot fail cleanly: when a
    write raises (a full disk, Ctrl-C while it runs), its destructor writes the end of the
    archive again, throws from the destructor, and std::terminate aborts the process, leaving
    the temp file behind. So the first failure is recorded here, later writes are discarded,
    torch finishes quickly on a file that is thrown away, and atomic_save raises the recorded
    exception (the original OSError with its errno, or KeyboardInterrupt) afterwards.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.failure: Optional[BaseException] = None

    def write(self, data: bytes) -> int:
        try:
            if self.failure is None:
                self._raw.write(data)
        except BaseException as error:  # recorded, and raised once torch.save has returned
            self.failure = error
        return len(data)

    def flush(self) -> None:
        try:
            if self.failure is None:
                self._raw.flush()
        except BaseException as error:
            self.failure = error

    def interrupt(self, signum: int, frame: Any) -> None:
        """A SIGINT handler: stop writing now, raise KeyboardInterrupt once torch.save returns."""
        if self.failure is None:
            self.failure = KeyboardInterrupt()


@contextlib.contextmanager
def _interrupt_deferred_to(guarded: _GuardedFile) -> Iterator[None]:
    """Routes Ctrl-C to ``guarded`` while torch.save runs.

    Python raises KeyboardInterrupt at the next bytecode, which during a save is often the
    first line of the write callback torch calls, outside any try: torch would see the
    failure and abort (see _GuardedFile). Only the main thread can set handlers, and a handler
    the program installed itself is left alone.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, guarded.interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def write_atomically(path: PathLike, write: Callable[[IO[bytes]], Any], *, verify: bool = False,
                     keep_failed: bool = False) -> str:
    """Calls ``write(file)`` on a temp file beside ``path`` and renames it over ``path``;
    see atomic_save for every guarantee."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if verify:
        find_cli()  # a missing CLI fails before anything is written
    # Before writing: a killed save's temp file may be what would make this one hit a full disk.
    remove_stale_temp_files(path)
    mode = _new_file_mode(path)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # mkstemp's 0600 is for the temp name only
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if verify:
            verify_files([temp])
        os.replace(temp, path)
    except BaseException as error:
        _discard(temp, path, keep_failed, error)
        raise
    fsync_directory(directory)
    return path


def remove_stale_temp_files(path: PathLike) -> List[str]:
    """Removes the temp files that saves to ``path`` left behind when their process was killed
    outright (``.NAME.PID.XXXX.tmp`` whose PID no longer runs); returns their paths.

    Only ``path``'s own temp names are considered, never another target's or a ``keep_failed``
    file. A temp file whose PID runs (this process's, another saver's, or a reused PID) is left
    alone: it may be a save in progress. PIDs are this machine's, so two machines must not save
    to one path on a shared file system (the last rename would win anyway). Never raises: a
    file that cannot be removed is logged and skipped.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    # mkstemp's random part never holds a dot, so the name parses from its end however many
    # dots NAME has, and another target's temp (``.NAME.1.PID.XXXX.tmp``) never matches.
    pattern = re.compile(rf"\.{re.escape(os.path.basename(path))}\.(\d+)\.[a-z0-9_]+\.tmp")
    removed: List[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or _process_exists(int(match.group(1))):
            continue
        stale = os.path.join(directory, name)
        try:
            os.unlink(stale)
        except FileNotFoundError:
            continue  # another saver cleaned it up first
        except OSError as error:
            logger.warning("could not remove %s, left by a killed save: %s", stale, error)
            continue
        logger.info("removed %s, left by a save whose process was killed", stale)
        removed.append(stale)
    return removed


def _process_exists(pid: int) -> bool:
    """Signal 0 checks existence without sending anything. Only ESRCH means gone: EPERM is a
    process of another user, and a PID kill() cannot take (0 is our own group, or too large to
    be one) was never a saver's, so its file is left alone too."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


def fsync_directory(directory: str) -> None:
    """fsync(2) on a directory, so that a rename or a new name in it survives a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(temp: str, path: str, keep_failed: bool, error: BaseException) -> None:
    """Removes the temp file of a failed write, or moves it aside; never masks ``error``."""
    try:
        if not keep_failed:
            os.unlink(temp)
            return
        token = os.path.basename(temp).rsplit(".", 2)[-2]  # mkstemp's random part
        failed = f"{path}.failed-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{token}.tmp"
        os.replace(temp, failed)
        fsync_directory(os.path.dirname(os.path.abspath(path)))
    except OSError as cleanup_error:
        logger.warning("could not clean up %s after a failed save: %s", temp, cleanup_error)
        return
    logger.warning("save of %s failed (%s: %s); the written file was kept at %s",
                   path, type(error).__name__, error, failed)
    if hasattr(error, "failed_path"):
        error.failed_path = failed  # type: ignore[attr-defined]
    elif hasattr(error, "add_note"):  # Python 3.11+
        error.add_note(f"ckptguard: the failed save was kept at {failed}")


def _new_file_mode(path: str) -> int:
    """The replaced file's permissions, or what open(2) would give a new file under the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_current_umask()


def _current_umask() -> int:
    # /proc/self/status has it (Linux >= 4.7) without the set-and-restore dance of
    # os.umask, which would briefly change the umask of every other thread.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
        return mask
