"""latest_checkpoint: the resume path from `ckptguard latest`, or None."""
from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import unittest
from unittest import mock

from _support import TempDirTestCase, requires_cli, requires_torch

import ckptguard._latest as latest_module
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


class LatestCheckpointProtocolTest(TempDirTestCase):
    """Against a stand-in `ckptguard` that records its argv: what is asked, and how answers are read."""

    def fake_cli(self, script: str) -> str:
        bin_dir = self.path("bin")
        os.mkdir(bin_dir)
        cli = os.path.join(bin_dir, "ckptguard")
        with open(cli, "w", encoding="utf-8") as f:
            f.write(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({self.path('argv.json')!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n{script}\n")
        os.chmod(cli, os.stat(cli).st_mode | stat.S_IXUSR)
        for patcher in (mock.patch.dict(os.environ, {"PATH": bin_dir}), mock.patch.object(latest_module, "_latest_takes_json", True)):
            patcher.start()
            self.addCleanup(patcher.stop)
        return cli

    def calls(self) -> list:
        with open(self.path("argv.json"), encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def test_asks_for_json_and_passes_expectations_as_json_values(self) -> None:
        self.fake_cli("print(json.dumps({'path': '/runs/a/ckpt_9.pt'}))")
        found = latest_checkpoint(self.dir, best=True, kind="any", expect={"config.lr": 3e-4},
                                  config__name="tiny", config__hidden=64, resumed=None)
        self.assertEqual(found, "/runs/a/ckpt_9.pt")
        (argv,) = self.calls()
        self.assertEqual(argv[:5], ["latest", self.dir, "--quiet", "--best", "--kind"])
        expects = [argv[i + 1] for i, a in enumerate(argv) if a == "--expect"]
        self.assertEqual(expects, ["config.lr=0.0003", 'config.name="tiny"', "config.hidden=64", "resumed=null"])
        self.assertEqual(argv[-1], "--json")

    def test_a_json_answer_without_a_path_is_none(self) -> None:
        self.fake_cli("print(json.dumps({'path': None}))")
        self.assertIsNone(latest_checkpoint(self.dir))

    def test_falls_back_to_the_bare_path_once_when_latest_has_no_json_flag(self) -> None:
        self.fake_cli(
            "if '--json' in sys.argv:\n"
            "    sys.stderr.write(\"error: unknown option '--json'\\n\"); sys.exit(2)\n"
            "print('/runs/a/ckpt_3.pt')")
        self.assertEqual(latest_checkpoint(self.dir), "/runs/a/ckpt_3.pt")
        self.assertEqual(latest_checkpoint(self.dir), "/runs/a/ckpt_3.pt")
        self.assertEqual([call[-1] for call in self.calls()], ["--json", "--quiet", "--quiet"], "--json is not asked again")

    def test_no_valid_checkpoint_is_none_and_other_errors_raise_with_their_code(self) -> None:
        self.fake_cli(
            "sys.stderr.write('ckptguard: ' + sys.argv[2] + ': ' + ('NO_VALID_CHECKPOINT: none' if 'empty' in sys.argv[2] "
            "else 'PERMISSION_DENIED: cannot read') + '\\n'); sys.exit(1)")
        os.mkdir(self.path("empty"))
        self.assertIsNone(latest_checkpoint(self.path("empty")))
        with self.assertRaises(CkptguardError) as caught:
            latest_checkpoint(self.dir)
        self.assertEqual(caught.exception.code, "PERMISSION_DENIED")


if __name__ == "__main__":
    unittest.main()
