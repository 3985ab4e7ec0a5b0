"""Progress: JSON lines for `ckptguard run`, at most one a second, plus a heartbeat."""
from __future__ import annotations

import json
import os
import unittest
from typing import List
from unittest import mock

from _support import TempDirTestCase, requires_torch, run_python

from ckptguard import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ProgressTest(TempDirTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.file = self.path("progress.jsonl")
        self.clock = FakeClock()

    def lines(self) -> List[dict]:
        with open(self.file, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def progress(self, **kwargs) -> Progress:
        return Progress(self.file, clock=self.clock, **kwargs)

    def test_is_a_no_op_outside_ckptguard_run_without_a_path(self) -> None:
        with mock.patch.dict(os.environ, clear=False) as env:
            env.pop("CKPTGUARD_PROGRESS", None)
            progress = Progress()
            self.assertFalse(progress.enabled)
            self.assertFalse(progress.report(step=1, loss=0.5))
            progress.flush()
        self.assertEqual(self.listing(), [])

    def test_writes_to_the_file_named_by_ckptguard_progress(self) -> None:
        with mock.patch.dict(os.environ, {"CKPTGUARD_PROGRESS": self.file}):
            progress = Progress(clock=self.clock)
        self.assertTrue(progress.report(step=10, epoch=1, loss=0.25))
        self.assertEqual(len(self.lines()), 1)

    def test_each_line_is_a_json_object_with_time_and_the_given_values(self) -> None:
        progress = self.progress()
        progress.report(step=1200, epoch=3, loss=0.41, lr=3e-4, phase="train", ok=True, skipped=None)
        (line,) = self.lines()
        self.assertEqual(set(line), {"time", "step", "epoch", "loss", "lr", "phase", "ok"})
        self.assertEqual((line["step"], line["epoch"], line["loss"], line["lr"]), (1200, 3, 0.41, 3e-4))
        self.assertEqual((line["phase"], line["ok"]), ("train", True))
        self.assertIsInstance(line["time"], float)
        with open(self.file, encoding="utf-8") as f:
            self.assertTrue(f.read().endswith("}\n"))

    def test_non_finite_numbers_are_written_as_strings_json_can_carry(self) -> None:
        progress = self.progress()
        progress.report(step=1, loss=float("nan"), grad_norm=float("inf"), other=float("-inf"))
        (line,) = self.lines()
        self.assertEqual((line["loss"], line["grad_norm"], line["other"]), ("nan", "inf", "-inf"))

    def test_reports_inside_a_second_are_held_and_only_the_newest_is_written(self) -> None:
        progress = self.progress()
        self.assertTrue(progress.report(step=1))
        self.clock.now += 0.3
        self.assertFalse(progress.report(step=2))
        self.clock.now += 0.3
        self.assertFalse(progress.report(step=3))
        self.assertEqual([l["step"] for l in self.lines()], [1])
        self.clock.now += 0.5  # 1.1 s after the first write
        self.assertTrue(progress.report(step=4))
        self.clock.now += 0.1
        self.assertFalse(progress.report(step=5))
        progress.flush()
        progress.flush()  # nothing left to write
        self.assertEqual([l["step"] for l in self.lines()], [1, 4, 5])

    def test_min_interval_is_configurable_and_zero_writes_every_report(self) -> None:
        progress = self.progress(min_interval=0)
        for step in range(5):
            progress.report(step=step)
        self.assertEqual(len(self.lines()), 5)
        with self.assertRaisesRegex(ValueError, "min_interval"):
            Progress(self.file, min_interval=-1)

    def test_touches_a_heartbeat_beside_the_file_on_every_write(self) -> None:
        progress = self.progress()
        heartbeat = self.file + ".heartbeat"
        self.assertEqual(progress.heartbeat, heartbeat)
        progress.report(step=1)
        self.assertTrue(os.path.exists(heartbeat))
        os.utime(heartbeat, (1_000_000, 1_000_000))
        self.clock.now += 0.5
        progress.report(step=2)  # held: the heartbeat is throttled with the writes
        self.assertEqual(os.stat(heartbeat).st_mtime, 1_000_000)
        self.clock.now += 0.6
        progress.report(step=3)
        self.assertGreater(os.stat(heartbeat).st_mtime, 1_000_000)

    def test_the_heartbeat_path_can_be_chosen(self) -> None:
        progress = self.progress(heartbeat=self.path("beat"))
        progress.report(step=1)
        self.assertTrue(os.path.exists(self.path("beat")))
        self.assertFalse(os.path.exists(self.file + ".heartbeat"))

    def test_rejects_values_json_cannot_carry_naming_the_key(self) -> None:
        progress = self.progress()
        with self.assertRaisesRegex(TypeError, r"loss= .* got list"):
            progress.report(loss=[0.1, 0.2])
        self.assertFalse(os.path.exists(self.file))

    def test_a_write_failure_is_logged_once_and_never_raised(self) -> None:
        progress = Progress(self.path("missing-dir", "progress.jsonl"), min_interval=0)
        with self.assertLogs("ckptguard", "WARNING") as logs:
            progress.report(step=1)
            progress.report(step=2)
        self.assertEqual(len(logs.output), 1)
        self.assertIn("missing-dir", logs.output[0])

    def test_a_report_held_at_exit_is_written(self) -> None:
        result = run_python(f"""
            from ckptguard import Progress
            progress = Progress({self.file!r})
            progress.report(step=1)
            progress.report(step=2)  # held by the throttle when the script ends
        """)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([l["step"] for l in self.lines()], [1, 2])

    @requires_torch
    def test_scalar_tensors_are_converted_when_written(self) -> None:
        import torch

        progress = self.progress()
        progress.report(step=torch.tensor(7), loss=torch.tensor(0.5), acc=torch.tensor([0.25]))
        (line,) = self.lines()
        self.assertEqual((line["step"], line["loss"], line["acc"]), (7, 0.5, 0.25))
        with self.assertRaisesRegex(TypeError, "weights="):
            progress.report(weights=torch.ones(3))


if __name__ == "__main__":
    unittest.main()
