"""Completion markers (docs/markers.md): `<dir>/.done/<unit>.done`, written atomically after
the outputs are measured, hashed and (optionally) verified."""
from __future__ import annotations

import hashlib
import json
import os
import re
import unittest
from unittest import mock

from _support import TempDirTestCase, requires_cli, requires_torch, temp_files

from ckptguard import CkptguardError, atomic_save, is_done, mark_done, marker_path, read_marker


class MarkersTest(TempDirTestCase):
    def write(self, name: str, data: bytes) -> str:
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_a_unit_is_done_once_marked(self) -> None:
        out = self.write("shard_0.bin", b"abc")
        self.assertFalse(is_done("step_100", directory=self.dir))
        marker = mark_done("step_100", [out], directory=self.dir)
        self.assertEqual(marker, self.path(".done", "step_100.done"))
        self.assertTrue(is_done("step_100", directory=self.dir))

    def test_the_marker_records_unit_outputs_sizes_hashes_time_and_worker(self) -> None:
        out = self.write("sub/shard_0.bin", b"hello")
        outside_dir = self.path("elsewhere")
        os.mkdir(outside_dir)
        outside = self.write("elsewhere/x.bin", b"")
        mark_done("u1", [out, outside], directory=self.path("sub"), worker="rank0")
        with open(self.path("sub", ".done", "u1.done"), encoding="utf-8") as f:
            marker = json.load(f)
        self.assertEqual(set(marker), {"version", "unit", "outputs", "time", "worker"})
        self.assertEqual((marker["version"], marker["unit"], marker["worker"]), (1, "u1", "rank0"))
        self.assertEqual(marker["outputs"], [
            {"path": "shard_0.bin", "size": 5, "sha256": hashlib.sha256(b"hello").hexdigest()},
            {"path": outside, "size": 0, "sha256": hashlib.sha256(b"").hexdigest()},
        ])
        self.assertRegex(marker["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(read_marker("u1", directory=self.path("sub")), marker)

    def test_the_default_worker_is_host_and_pid(self) -> None:
        mark_done("u", [self.write("a", b"1")], directory=self.dir)
        self.assertRegex(read_marker("u", directory=self.dir)["worker"], rf"^.+:{os.getpid()}$")

    def test_is_done_is_false_when_an_output_is_gone_or_changed_size(self) -> None:
        a = self.write("a.bin", b"aaaa")
        b = self.write("b.bin", b"bbbb")
        mark_done("u", [a, b], directory=self.dir)
        self.write("b.bin", b"bbbbb")
        self.assertFalse(is_done("u", directory=self.dir))
        self.write("b.bin", b"bbbb")
        self.assertTrue(is_done("u", directory=self.dir))
        os.unlink(a)
        self.assertFalse(is_done("u", directory=self.dir))

    def test_check_hashes_catches_a_same_size_change(self) -> None:
        a = self.write("a.bin", b"aaaa")
        mark_done("u", [a], directory=self.dir)
        self.write("a.bin", b"aaab")
        self.assertTrue(is_done("u", directory=self.dir))
        self.assertFalse(is_done("u", directory=self.dir, check_hashes=True))

    def test_a_malformed_or_foreign_marker_means_not_done(self) -> None:
        mark_done("u", [], directory=self.dir)
        path = marker_path("u", directory=self.dir)
        for text in ("{not json", "[]", '{"version": 1, "unit": "other", "outputs": []}',
                     '{"version": 1, "unit": "u", "outputs": [{"path": "a"}]}', '{"unit": "u", "outputs": []}'):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            self.assertFalse(is_done("u", directory=self.dir), text)

    def test_a_marker_from_a_newer_protocol_raises_future_version(self) -> None:
        mark_done("u", [], directory=self.dir)
        with open(marker_path("u", directory=self.dir), "w", encoding="utf-8") as f:
            json.dump({"version": 2, "unit": "u", "outputs": []}, f)
        with self.assertRaises(CkptguardError) as caught:
            is_done("u", directory=self.dir)
        self.assertEqual(caught.exception.code, "FUTURE_VERSION")

    def test_units_may_nest_with_slashes(self) -> None:
        mark_done("step_100/rank_3", [self.write("s.bin", b"x")], directory=self.dir)
        self.assertTrue(os.path.isfile(self.path(".done", "step_100", "rank_3.done")))
        self.assertTrue(is_done("step_100/rank_3", directory=self.dir))
        self.assertFalse(is_done("step_100/rank_4", directory=self.dir))

    def test_unit_names_that_could_escape_or_hide_are_refused(self) -> None:
        for bad in ("", "../x", "a/../b", ".hidden", "a//b", "a/", "-flag", "sp ace", "x" * 201, 5):
            with self.assertRaisesRegex(ValueError, "unit must be"):
                mark_done(bad, [], directory=self.dir)

    def test_a_missing_output_raises_and_writes_no_marker(self) -> None:
        with self.assertRaises(FileNotFoundError):
            mark_done("u", [self.path("nope.bin")], directory=self.dir)
        self.assertFalse(os.path.exists(marker_path("u", directory=self.dir)))

    def test_an_output_named_twice_or_a_directory_is_refused(self) -> None:
        a = self.write("a.bin", b"1")
        with self.assertRaisesRegex(ValueError, "twice"):
            mark_done("u", [a, self.path(".", "a.bin")], directory=self.dir)
        with self.assertRaisesRegex(ValueError, "not a regular file"):
            mark_done("u", [self.dir], directory=self.dir)

    def test_the_directory_defaults_to_ckptguard_dir(self) -> None:
        out = self.write("a.bin", b"1")
        with mock.patch.dict(os.environ, {"CKPTGUARD_DIR": self.dir}):
            mark_done("u", [out])
            self.assertTrue(is_done("u"))
        with mock.patch.dict(os.environ, {}, clear=True), self.assertRaisesRegex(ValueError, "CKPTGUARD_DIR"):
            is_done("u")

    def test_marking_again_replaces_the_marker_and_leaves_no_temp_files(self) -> None:
        mark_done("u", [self.write("a.bin", b"1")], directory=self.dir, worker="first")
        mark_done("u", [self.write("a.bin", b"22")], directory=self.dir, worker="second")
        self.assertEqual(read_marker("u", directory=self.dir)["worker"], "second")
        self.assertTrue(is_done("u", directory=self.dir))
        self.assertEqual(temp_files(self.path(".done")), [])
        self.assertEqual(self.listing(self.path(".done")), ["u.done"])


@requires_torch
@requires_cli
class MarkersVerifyTest(TempDirTestCase):
    def test_verify_checks_checkpoint_outputs_before_marking(self) -> None:
        import torch

        good = self.path("model.pt")
        atomic_save({"w": torch.ones(3)}, good)
        notes = self.path("notes.txt")  # not a checkpoint: hashed, never handed to verify
        with open(notes, "w", encoding="utf-8") as f:
            f.write("fine")
        mark_done("u", [good, notes], directory=self.dir, verify=True)
        self.assertTrue(is_done("u", directory=self.dir))

    def test_verify_refuses_a_corrupt_output_and_writes_no_marker(self) -> None:
        import torch

        bad = self.path("model.pt")
        atomic_save({"w": torch.ones(1000)}, bad)
        with open(bad, "r+b") as f:
            f.truncate(os.path.getsize(bad) - 100)
        with self.assertRaises(CkptguardError) as caught:
            mark_done("u", [bad], directory=self.dir, verify=True)
        self.assertTrue(re.fullmatch(r"[A-Z_]+", caught.exception.code))
        self.assertEqual(caught.exception.report["verdict"], "corrupt")
        self.assertFalse(is_done("u", directory=self.dir))
        self.assertFalse(os.path.exists(self.path(".done")))


if __name__ == "__main__":
    unittest.main()
