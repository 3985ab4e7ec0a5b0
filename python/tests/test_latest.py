"""latest_checkpoint: the resume path from `ckptguard latest`, or None."""
from __future__ import annotations

import os
import shutil
import unittest
from unittest import mock

from _support import TempDirTestCase, requires_cli, requires_torch

from ckptguard import CkptguardError, atomic_save, latest_checkpoint


@requires_torch
@requires_cli
class LatestCheckpointTest(TempDirTestCase):
    def save_training_checkpoint(self, epoch: int, hidden: int = 8) -> str:
        import torch

        model = torch.nn.Linear(4, hidden)
        optimizer = torch.optim.Adam(model.parameters())
        model(torch.randn(2, 4)).sum().backward()
        optimizer.step()
        path = self.path(f"ckpt_epoch_{epoch:04d}.pt")
        atomic_save({"epoch": epoch, "model_state_dict": model.state_dict(),
                     "optimizer_state_dict": optimizer.state_dict(), "config": {"hidden": hidden, "name": "tiny"}}, path)
        return path

    def test_a_directory_that_does_not_exist_yet_has_no_checkpoint(self) -> None:
        self.assertIsNone(latest_checkpoint(self.path("not-yet")))

    def test_an_empty_directory_has_no_checkpoint(self) -> None:
        self.assertIsNone(latest_checkpoint(self.dir))

    def test_returns_the_newest_valid_checkpoint(self) -> None:
        self.save_training_checkpoint(1)
        second = self.save_training_checkpoint(2)
        self.assertEqual(latest_checkpoint(self.dir), second)

    def test_skips_a_corrupt_newest_and_a_leftover_temp_file(self) -> None:
        first = self.save_training_checkpoint(1)
        second = self.save_training_checkpoint(2)
        shutil.copy(second, self.path(".ckpt_epoch_0003.pt.1234.abcd.tmp"))  # a save that died
        with open(second, "r+b") as f:
            f.truncate(os.path.getsize(second) // 2)
        self.assertEqual(latest_checkpoint(self.dir), first)

    def test_keywords_are_expectations_with_double_underscores_for_dots(self) -> None:
        small = self.save_training_checkpoint(1, hidden=8)
        self.save_training_checkpoint(2, hidden=16)
        self.assertEqual(latest_checkpoint(self.dir, config__hidden=8), small)
        self.assertEqual(latest_checkpoint(self.dir, expect={"config.hidden": 8}, config__name="tiny"), small)
        self.assertIsNone(latest_checkpoint(self.dir, config__hidden=32))
        self.assertIsNone(latest_checkpoint(self.dir, config__name="8"))  # a string is never the number 8

    def test_kind_any_accepts_weights_only_files(self) -> None:
        atomic_save({"w": __import__("torch").ones(2)}, self.path("weights.pt"))
        self.assertIsNone(latest_checkpoint(self.dir))
        self.assertEqual(latest_checkpoint(self.dir, kind="any"), self.path("weights.pt"))

    def test_a_usage_error_raises_with_the_cli_code(self) -> None:
        self.save_training_checkpoint(1)
        with self.assertRaises(CkptguardError) as caught:
            latest_checkpoint(self.dir, kind="bogus")
        self.assertEqual(caught.exception.code, "USAGE")

    def test_without_the_cli_it_says_so(self) -> None:
        with mock.patch.dict(os.environ, {"PATH": self.dir}), self.assertRaises(CkptguardError) as caught:
            latest_checkpoint(self.dir)
        self.assertEqual(caught.exception.code, "CLI_NOT_FOUND")


if __name__ == "__main__":
    unittest.main()
