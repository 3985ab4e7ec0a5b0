"""atomic_save: the file at a path is the old checkpoint or the new one, never a mix, and a
failed save leaves no temp file behind (or moves it aside when asked)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import stat
import subprocess
import threading
import time
import unittest
from typing import Optional, Tuple
from unittest import mock

from _support import (TempDirTestCase, requires_cli, requires_torch, run_python, start_python, temp_files,
                      wait_for)

from ckptguard import CkptguardError, atomic_save


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class ExplodingOnPickle:
    """Pickled after the tensors before it in the dict; raising from __reduce__ fails torch.save mid-way."""

    def __reduce__(self):
        raise ValueError("cannot pickle this on purpose")


@requires_torch
class AtomicSaveTest(TempDirTestCase):
    def setUp(self) -> None:
        super().setUp()
        import torch

        self.torch = torch
        self.target = self.path("ckpt.pt")
        atomic_save({"step": 1, "w": torch.arange(4.0)}, self.target)
        self.old_bytes = read(self.target)

    def assert_old_checkpoint_intact(self) -> None:
        self.assertEqual(read(self.target), self.old_bytes)
        self.assertEqual(self.torch.load(self.target)["step"], 1)

    def test_writes_a_loadable_checkpoint_and_leaves_only_it(self) -> None:
        returned = atomic_save({"step": 2, "w": self.torch.ones(3)}, self.target)
        self.assertEqual(returned, self.target)
        loaded = self.torch.load(self.target)
        self.assertEqual(loaded["step"], 2)
        self.assertTrue(self.torch.equal(loaded["w"], self.torch.ones(3)))
        self.assertEqual(self.listing(), ["ckpt.pt"])

    def test_accepts_a_path_object_and_creates_new_files_with_umask_permissions(self) -> None:
        import pathlib

        old_umask = os.umask(0o027)
        self.addCleanup(os.umask, old_umask)
        fresh = pathlib.Path(self.dir) / "fresh.pt"
        atomic_save({"x": 1}, fresh)
        self.assertEqual(stat.S_IMODE(os.stat(fresh).st_mode), 0o640)

    def test_keeps_the_permissions_of_the_file_it_replaces(self) -> None:
        os.chmod(self.target, 0o600)
        atomic_save({"step": 2}, self.target)
        self.assertEqual(stat.S_IMODE(os.stat(self.target).st_mode), 0o600)

    def test_keeps_the_old_file_when_pickling_raises_mid_save(self) -> None:
        with self.assertRaises(ValueError):
            atomic_save({"w": self.torch.zeros(1000), "bad": ExplodingOnPickle()}, self.target)
        self.assert_old_checkpoint_intact()
        self.assertEqual(self.listing(), ["ckpt.pt"])

    def test_keep_failed_moves_the_temp_file_aside(self) -> None:
        with self.assertRaises(ValueError), self.assertLogs("ckptguard", "WARNING") as logs:
            atomic_save({"bad": ExplodingOnPickle()}, self.target, keep_failed=True)
        self.assert_old_checkpoint_intact()
        kept = [n for n in self.listing() if n != "ckpt.pt"]
        self.assertEqual(len(kept), 1)
        self.assertRegex(kept[0], r"^ckpt\.pt\.failed-\d{8}T\d{6}Z-[a-z0-9_]+\.tmp$")
        self.assertIn(kept[0], "\n".join(logs.output))

    def test_a_full_disk_raises_the_original_os_error_and_keeps_the_old_file(self) -> None:
        # RLIMIT_FSIZE makes write(2) fail with EFBIG once the file would grow past 1 MB, as a
        # full disk fails with ENOSPC; torch 1.13 would abort the process here without the guard.
        result = run_python(f"""
            import errno, resource, signal, torch
            from ckptguard import atomic_save
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
            try:
                atomic_save({{"w": torch.zeros(4 << 20)}}, {self.target!r})
            except OSError as error:
                print("OSError", errno.errorcode[error.errno])
        """)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "OSError EFBIG")
        self.assert_old_checkpoint_intact()
        self.assertEqual(self.listing(), ["ckpt.pt"])

    def start_big_save_and_wait_for_its_temp(self, extra: str = ""):
        child = start_python(f"""
            import torch
            from ckptguard import atomic_save
            {extra}
            big = {{"w": torch.ones(150_000_000)}}  # 600 MB, written in about a second
            print("saving", flush=True)
            atomic_save(big, {self.target!r})
            print("saved", flush=True)
        """)
        self.addCleanup(lambda: (child.poll() is None and child.kill(), child.communicate()))
        self.assertEqual(child.stdout.readline().strip(), "saving")
        # Kill once the temp file holds some bytes but the save has not finished.
        wait_for(lambda: any(os.path.getsize(self.path(n)) > (1 << 20) for n in temp_files(self.dir)),
                 what="the temp file to grow")
        return child

    def test_sigkill_mid_save_leaves_the_old_file_at_the_path(self) -> None:
        # The fsync is made slow so that the kill always lands before the rename.
        child = self.start_big_save_and_wait_for_its_temp("import os, time; os.fsync = lambda fd: time.sleep(60)")
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        self.assert_old_checkpoint_intact()
        self.assertEqual(len(temp_files(self.dir)), 1, "a killed save leaves its temp file, never a partial ckpt.pt")
        atomic_save({"step": 2}, self.target)
        self.assertEqual(self.listing(), ["ckpt.pt"], "the next save removes the killed save's temp file")

    def test_a_save_removes_only_its_own_targets_temp_files_of_processes_that_are_gone(self) -> None:
        gone = subprocess.Popen(["true"])
        gone.wait()  # reaped: a zombie would still answer kill(pid, 0)
        names = {
            "killed": f".ckpt.pt.{gone.pid}.abcd1234.tmp",
            "in_progress": f".ckpt.pt.{os.getpid()}.abcd1234.tmp",  # a save of a live process
            "other_target": f".other.pt.{gone.pid}.abcd1234.tmp",
            "longer_target": f".ckpt.pt.1.{gone.pid}.abcd1234.tmp",  # ckpt.pt.1's, not ckpt.pt's
            "kept_failed": "ckpt.pt.failed-20240101T000000Z-abcd1234.tmp",
        }
        for name in names.values():
            with open(self.path(name), "wb") as f:
                f.write(b"PK\x03\x04 half a checkpoint")
        atomic_save({"step": 2}, self.target)
        self.assertEqual(self.listing(), sorted(["ckpt.pt", *(n for k, n in names.items() if k != "killed")]))

    def test_ctrl_c_mid_save_raises_keyboard_interrupt_and_removes_the_temp(self) -> None:
        child = self.start_big_save_and_wait_for_its_temp("import os, time; os.fsync = lambda fd: time.sleep(60)")
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
        # An uncaught KeyboardInterrupt ends Python by SIGINT (-2); torch's abort would be SIGABRT.
        self.assertEqual(child.returncode, -signal.SIGINT, stderr)
        self.assertIn("KeyboardInterrupt", stderr)
        self.assertNotIn("terminate called", stderr)
        self.assert_old_checkpoint_intact()
        self.assertEqual(self.listing(), ["ckpt.pt"])

    def test_ctrl_c_while_torch_writes_never_aborts_the_process(self) -> None:
        child = self.start_big_save_and_wait_for_its_temp()
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
        if "saved" in stdout:
            self.skipTest("the save finished before the interrupt arrived")
        self.assertEqual(child.returncode, -signal.SIGINT, stderr)  # KeyboardInterrupt, not SIGABRT from torch
        self.assertIn("KeyboardInterrupt", stderr)
        self.assertNotIn("terminate called", stderr)
        self.assert_old_checkpoint_intact()
        self.assertEqual(self.listing(), ["ckpt.pt"])


@requires_torch
@requires_cli
class AtomicSaveVerifyTest(TempDirTestCase):
    def setUp(self) -> None:
        super().setUp()
        import torch

        self.torch = torch
        self.target = self.path("ckpt.pt")
        atomic_save({"step": 1}, self.target)
        self.old_bytes = read(self.target)

    def test_verify_accepts_a_whole_checkpoint(self) -> None:
        atomic_save({"step": 2, "w": self.torch.randn(10)}, self.target, verify=True)
        self.assertEqual(self.torch.load(self.target)["step"], 2)
        self.assertEqual(self.listing(), ["ckpt.pt"])

    def corrupt_save(self):
        real_save = self.torch.save

        def truncated_save(obj, f):
            buffer = io.BytesIO()
            real_save(obj, buffer)
            f.write(buffer.getvalue()[: buffer.tell() // 2])  # a save cut off half-way

        return mock.patch.object(self.torch, "save", truncated_save)

    def test_verify_rejects_a_corrupt_temp_and_keeps_the_old_file(self) -> None:
        with self.corrupt_save(), self.assertRaises(CkptguardError) as caught:
            atomic_save({"step": 2, "w": self.torch.randn(10)}, self.target, verify=True)
        self.assertNotEqual(caught.exception.code, "CLI_NOT_FOUND")
        self.assertIn(caught.exception.report["verdict"], ("corrupt", "unreadable"))
        self.assertEqual(read(self.target), self.old_bytes)
        self.assertEqual(self.listing(), ["ckpt.pt"])

    def test_verify_with_keep_failed_keeps_the_rejected_file_for_inspection(self) -> None:
        with self.corrupt_save(), self.assertRaises(CkptguardError) as caught, self.assertLogs("ckptguard", "WARNING"):
            atomic_save({"step": 2}, self.target, verify=True, keep_failed=True)
        failed = caught.exception.failed_path
        self.assertIsNotNone(failed)
        self.assertEqual(caught.exception.code, "TRUNCATED")
        self.assertTrue(read(failed).startswith(b"PK\x03\x04"))
        self.assertIn(os.path.basename(failed), str(caught.exception))
        self.assertEqual(read(self.target), self.old_bytes)

    def test_verify_without_the_cli_fails_before_writing(self) -> None:
        with mock.patch.dict(os.environ, {"PATH": self.dir}), self.assertRaises(CkptguardError) as caught:
            atomic_save({"step": 2}, self.target, verify=True)
        self.assertEqual(caught.exception.code, "CLI_NOT_FOUND")
        self.assertIn("PATH", str(caught.exception))
        self.assertEqual(read(self.target), self.old_bytes)
        self.assertEqual(self.listing(), ["ckpt.pt"])


# One fresh process per save, forked from a server that has imported torch: importing torch takes
# about 2 s, which 50 saves cannot afford each. The server reaps each save's process before it
# answers "exited", so the test never sees a zombie (which kill(pid, 0) would call alive). The
# content differs per step: both tensors are filled with it, so a mix of two saves cannot pass.
FORK_SERVER = """
    import os, sys, traceback
    import torch
    from ckptguard import atomic_save
    torch.set_num_threads(1)  # no OpenMP pool in this process, so forked children may use one
    print("ready", flush=True)
    for line in sys.stdin:
        step = int(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                checkpoint = {"step": step, "model": {"w": torch.full((1 << 20,), float(step)),
                                                      "b": torch.full((256, 1024), -float(step))}}
                os.write(1, f"saving {os.getpid()}\\n".encode())
                atomic_save(checkpoint, TARGET)
                os.write(1, b"saved\\n")
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(f"exited {status}", flush=True)
"""


@requires_torch
@requires_cli
class AtomicSaveKilledAtRandomTest(TempDirTestCase):
    """SIGKILL at random points of 50 saves over one checkpoint (issue #10)."""

    SAVES = 50

    def setUp(self) -> None:
        super().setUp()
        import torch

        self.torch = torch
        self.target = self.path("ckpt.pt")
        self.server = start_python(FORK_SERVER.replace("TARGET", repr(self.target)), stdin=subprocess.PIPE)
        # A hung server would block readline forever; killing it turns that into an EOF and a failure.
        watchdog = threading.Timer(300, self.server.kill)
        watchdog.start()
        self.addCleanup(lambda: (watchdog.cancel(), self.server.poll() is None and self.server.kill(),
                                 self.server.communicate()))
        self.assertEqual(self.read_line(), "ready")

    def read_line(self) -> str:
        line = self.server.stdout.readline()
        if not line:
            raise AssertionError(f"the fork server ended: {self.server.wait()} {self.server.stderr.read()[-3000:]}")
        return line.strip()

    def save(self, step: int, kill_after: Optional[float] = None) -> Tuple[bool, float]:
        """Saves ``step`` in a fresh process, SIGKILLed ``kill_after`` seconds after it starts
        atomic_save (unless it finished first); returns (whether the save finished, seconds from
        start to finish as this process saw them)."""
        self.server.stdin.write(f"{step}\n")
        self.server.stdin.flush()
        word, pid = self.read_line().split()
        self.assertEqual(word, "saving")
        started = time.perf_counter()
        if kill_after is not None:
            time.sleep(kill_after)
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass  # it finished and the server reaped it (its pid is not reused within microseconds)
        line = self.read_line()
        finished = line == "saved"
        elapsed = time.perf_counter() - started
        if finished:
            line = self.read_line()
        status = int(line.split()[1])  # waitpid's: 0 for exit 0, the signal number when killed
        if kill_after is None:
            self.assertEqual(status, 0, "a save nobody kills succeeds")
        elif not finished:
            self.assertEqual(status, signal.SIGKILL, "killed by the signal, not failed on its own")
        return finished, elapsed

    def assert_whole_checkpoint_of(self, steps: Tuple[int, ...]) -> int:
        """The path loads with torch as the checkpoint of one of ``steps``; returns that step."""
        loaded = self.torch.load(self.target)
        step = loaded["step"]
        self.assertIn(step, steps, "the old checkpoint or the new one, nothing else")
        self.assertTrue(bool((loaded["model"]["w"] == step).all()) and bool((loaded["model"]["b"] == -step).all()),
                        f"the tensors of step {step} are those it saved")
        return step

    def keep_for_verification(self, name: str) -> Tuple[str, str]:
        """A hard link to what the path holds now, and its SHA-256: atomic_save never writes into
        an existing file, so the link keeps these bytes while later saves replace the path."""
        kept = self.path("kept", name)
        os.link(self.target, kept)
        return kept, hashlib.sha256(read(kept)).hexdigest()

    def test_the_path_always_holds_a_whole_old_or_new_checkpoint_and_temp_files_do_not_pile_up(self) -> None:
        seed = int(os.environ.get("CKPTGUARD_TEST_SEED") or random.SystemRandom().randrange(1 << 32))
        rng = random.Random(seed)
        os.mkdir(self.path("kept"))
        # The kill delays span one save, measured here the way the kills see it (the fastest of
        # three, so a load spike does not stretch the range past the save). Drawn up to 1.5
        # times that, a few saves finish before their kill, and those must leave no temp file.
        durations = [self.save(step)[1] for step in (0, 0, 0)]
        window = 1.5 * min(durations)
        current, interrupted, kept = 0, 0, {}
        step = 0
        try:
            for step in range(1, self.SAVES + 1):
                finished, _ = self.save(step, kill_after=rng.uniform(0, window))
                current = self.assert_whole_checkpoint_of((step,) if finished else (current, step))
                path, digest = self.keep_for_verification(f"after-save-{step:03d}.pt")
                kept[path] = digest
                leftovers = temp_files(self.dir)
                if finished:
                    self.assertEqual(leftovers, [], f"save {step} finished: it removed every killed save's temp")
                else:
                    # Each save removes the temp files of the saves killed before it, so at most
                    # the one it left itself remains (none when it was killed before creating it).
                    self.assertLessEqual(len(leftovers), 1, leftovers)
                    interrupted += len(leftovers)
            step = self.SAVES + 1
            self.save(step)
            self.assert_whole_checkpoint_of((step,))
            self.assertEqual(temp_files(self.dir), [], "the next whole save leaves no temp file behind")
            self.assertEqual(self.listing(), ["ckpt.pt", "kept"])
            self.assertGreater(interrupted, 0, f"no kill landed mid-write (saves took {durations} s): nothing was tested")

            # One CLI call for all 50 (each call costs ~0.4 s of node startup), on the very bytes
            # the path held after each kill.
            self.assertEqual({path: hashlib.sha256(read(path)).hexdigest() for path in kept}, kept)
            result = subprocess.run(["ckptguard", "verify", "--json", self.path("kept")], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, timeout=120, check=False)
            verdicts = {f["path"]: f["verdict"] for f in json.loads(result.stdout)["files"]}
            self.assertEqual(verdicts, {path: "valid" for path in kept}, result.stderr)
            self.assertEqual(result.returncode, 0, result.stderr)
        except AssertionError as error:
            raise AssertionError(f"{error}\n(seed {seed}, at step {step}; rerun with CKPTGUARD_TEST_SEED={seed})") from None

if __name__ == "__main__":
    unittest.main()
