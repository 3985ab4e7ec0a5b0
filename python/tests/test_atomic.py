"""atomic_save: the file at a path is the old checkpoint or the new one, never a mix, and a
failed save leaves no temp file behind (or moves it aside when asked)."""
from __future__ import annotations

import io
import os
import signal
import stat
import unittest
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


if __name__ == "__main__":
    unittest.main()
