"""AsyncCheckpointWriter: the file holds the values of the moment save() returned, failures
surface on the next call, and one path is never written twice at once."""
from __future__ import annotations

import os
import threading
import time
import unittest
import zipfile
from typing import Dict, List
from unittest import mock

from _support import TempDirTestCase, requires_torch, run_python

import ckptguard._async as async_module
from ckptguard import AsyncCheckpointWriter, atomic_save


class ExplodingOnPickle:
    """Copied fine by the snapshot, fails when the background thread pickles it."""

    def __deepcopy__(self, memo):
        return ExplodingOnPickle()

    def __reduce__(self):
        raise ValueError("cannot pickle this on purpose")


def storage_members(path: str) -> List[str]:
    with zipfile.ZipFile(path) as archive:
        return sorted(n for n in archive.namelist() if "/data/" in n)


@requires_torch
class SnapshotTest(TempDirTestCase):
    def setUp(self) -> None:
        super().setUp()
        import torch

        self.torch = torch

    def test_the_file_holds_the_values_of_the_moment_save_returned(self) -> None:
        torch = self.torch
        weights = torch.zeros(1_000_000)
        with AsyncCheckpointWriter() as writer:
            writer.save({"w": weights, "step": 1}, self.path("a.pt"))
            weights.fill_(7.0)  # the optimizer's next in-place step, while the write may be running
        self.assertTrue(torch.equal(torch.load(self.path("a.pt"))["w"], torch.zeros(1_000_000)))

    def test_a_real_model_and_optimizer_are_saved_as_of_the_save_call(self) -> None:
        torch = self.torch
        torch.manual_seed(0)
        model = torch.nn.Linear(64, 64)
        optimizer = torch.optim.Adam(model.parameters())
        model(torch.randn(8, 64)).sum().backward()
        optimizer.step()
        expected = {k: v.clone() for k, v in model.state_dict().items()}
        expected_exp_avg = optimizer.state_dict()["state"][0]["exp_avg"].clone()
        with AsyncCheckpointWriter() as writer:
            writer.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, self.path("m.pt"))
            for _ in range(3):
                optimizer.step()
        loaded = torch.load(self.path("m.pt"))
        for key, value in expected.items():
            self.assertTrue(torch.equal(loaded["model"][key], value), key)
        self.assertTrue(torch.equal(loaded["optimizer"]["state"][0]["exp_avg"], expected_exp_avg))
        self.assertEqual(loaded["optimizer"]["param_groups"], optimizer.state_dict()["param_groups"])

    def test_shared_storage_stays_shared_as_torch_save_writes_it(self) -> None:
        torch = self.torch
        base = torch.arange(12.0)
        tied = {"embed.weight": base.view(3, 4), "head.weight": base.view(3, 4), "slice": base[2:6],
                "t": base.view(3, 4).t(), "other": torch.ones(2)}
        atomic_save(tied, self.path("plain.pt"))
        with AsyncCheckpointWriter() as writer:
            writer.save(tied, self.path("async.pt"))
        self.assertEqual(storage_members(self.path("async.pt")), storage_members(self.path("plain.pt")))
        loaded = torch.load(self.path("async.pt"))
        loaded["embed.weight"][0, 0] = 100.0
        self.assertEqual(loaded["head.weight"][0, 0].item(), 100.0)
        self.assertEqual(loaded["t"][0, 0].item(), 100.0)
        self.assertEqual(loaded["slice"].tolist(), [2.0, 3.0, 4.0, 5.0])
        self.assertEqual(loaded["t"].stride(), (1, 4))

    def test_parameters_dtypes_requires_grad_and_plain_values_survive(self) -> None:
        torch = self.torch
        obj = {"p": torch.nn.Parameter(torch.randn(3)), "g": torch.randn(2, requires_grad=True),
               "half": torch.ones(4, dtype=torch.bfloat16), "ints": torch.arange(5), "empty": torch.empty(0),
               "nested": [(1, "a", None), {"lr": 0.1}], "flag": True}
        with AsyncCheckpointWriter() as writer:
            writer.save(obj, self.path("p.pt"))
        loaded = torch.load(self.path("p.pt"))
        self.assertIsInstance(loaded["p"], torch.nn.Parameter)
        self.assertTrue(loaded["g"].requires_grad)
        self.assertEqual(loaded["half"].dtype, torch.bfloat16)
        self.assertTrue(torch.equal(loaded["ints"], torch.arange(5)))
        self.assertEqual(loaded["empty"].numel(), 0)
        self.assertEqual(loaded["nested"], [(1, "a", None), {"lr": 0.1}])
        self.assertIs(loaded["flag"], True)


@requires_torch
class WriterTest(TempDirTestCase):
    def setUp(self) -> None:
        super().setUp()
        import torch

        self.torch = torch

    def test_save_returns_a_future_of_the_path(self) -> None:
        with AsyncCheckpointWriter() as writer:
            future = writer.save({"x": 1}, self.path("f.pt"))
            self.assertEqual(future.result(timeout=30), self.path("f.pt"))
            self.assertEqual(writer.pending, 0)

    def test_a_failed_save_is_re_raised_by_the_next_call_and_keeps_the_old_file(self) -> None:
        target = self.path("c.pt")
        atomic_save({"step": 1}, target)
        writer = AsyncCheckpointWriter()
        with self.assertLogs("ckptguard", "ERROR"):
            writer.save({"bad": ExplodingOnPickle()}, target)
            with self.assertRaisesRegex(ValueError, "on purpose"):
                writer.wait()
        self.assertEqual(self.torch.load(target), {"step": 1})
        self.assertEqual(self.listing(), ["c.pt"])
        writer.wait()  # raised once, then cleared
        writer.save({"step": 2}, target)
        writer.close()
        self.assertEqual(self.torch.load(target), {"step": 2})

    def test_save_after_a_failed_save_raises_before_queueing_more(self) -> None:
        writer = AsyncCheckpointWriter()
        self.addCleanup(writer.close)
        with self.assertLogs("ckptguard", "ERROR"):
            writer.save({"bad": ExplodingOnPickle()}, self.path("a.pt"))
            with self.assertRaisesRegex(ValueError, "on purpose"):
                writer.save({"ok": 1}, self.path("b.pt"))
        self.assertFalse(os.path.exists(self.path("b.pt")))

    def test_a_failure_to_write_the_file_surfaces_too(self) -> None:
        writer = AsyncCheckpointWriter()
        with self.assertLogs("ckptguard", "ERROR") as logs:
            writer.save({"x": 1}, self.path("no-such-dir", "a.pt"))
            with self.assertRaises(FileNotFoundError):
                writer.close()
        self.assertIn("no-such-dir", "\n".join(logs.output))

    def test_an_object_that_cannot_be_copied_raises_from_save_itself(self) -> None:
        class Uncopyable:
            def __reduce__(self):
                raise TypeError("no copies")

        with AsyncCheckpointWriter() as writer, self.assertRaisesRegex(TypeError, "no copies"):
            writer.save({"u": Uncopyable()}, self.path("u.pt"))
        self.assertEqual(self.listing(), [])

    def test_close_re_raises_a_failed_save(self) -> None:
        writer = AsyncCheckpointWriter()
        with self.assertLogs("ckptguard", "ERROR"):
            writer.save({"bad": ExplodingOnPickle()}, self.path("a.pt"))
            with self.assertRaisesRegex(ValueError, "on purpose"):
                writer.close()
        with self.assertRaisesRegex(ValueError, "after close"):
            writer.save({"x": 1}, self.path("a.pt"))

    def test_writes_to_one_path_never_overlap_and_the_last_save_wins(self) -> None:
        in_flight: Dict[str, int] = {}
        most_at_once: Dict[str, int] = {}
        guard = threading.Lock()
        real_atomic_save = async_module.atomic_save

        def slow_atomic_save(obj, path, **kwargs):
            with guard:
                in_flight[path] = in_flight.get(path, 0) + 1
                most_at_once[path] = max(most_at_once.get(path, 0), in_flight[path])
            time.sleep(0.02)
            try:
                return real_atomic_save(obj, path, **kwargs)
            finally:
                with guard:
                    in_flight[path] -= 1

        target = self.path("same.pt")
        with mock.patch.object(async_module, "atomic_save", slow_atomic_save):
            # Two writers with deep queues, both hammering one path.
            with AsyncCheckpointWriter(max_pending=4) as first, AsyncCheckpointWriter(max_pending=4) as second:
                for step in range(6):
                    first.save({"step": step}, target)
                    second.save({"step": step}, target)
            with AsyncCheckpointWriter(max_pending=4) as writer:
                for step in range(10, 15):
                    writer.save({"step": step}, target)
        self.assertEqual(most_at_once[target], 1)
        self.assertEqual(self.torch.load(target), {"step": 14})
        self.assertEqual(self.listing(), ["same.pt"])

    def test_save_blocks_while_max_pending_writes_are_outstanding(self) -> None:
        release = threading.Event()
        real_atomic_save = async_module.atomic_save

        def held_atomic_save(obj, path, **kwargs):
            release.wait(30)
            return real_atomic_save(obj, path, **kwargs)

        with mock.patch.object(async_module, "atomic_save", held_atomic_save):
            writer = AsyncCheckpointWriter(max_pending=2)
            writer.save({"n": 1}, self.path("1.pt"))
            writer.save({"n": 2}, self.path("2.pt"))
            self.assertEqual(writer.pending, 2)
            third_returned = threading.Event()
            thread = threading.Thread(target=lambda: (writer.save({"n": 3}, self.path("3.pt")), third_returned.set()))
            thread.start()
            self.assertFalse(third_returned.wait(0.3), "a third save must wait for a free slot")
            release.set()
            self.assertTrue(third_returned.wait(30))
            thread.join()
            writer.close()
        self.assertEqual(self.listing(), ["1.pt", "2.pt", "3.pt"])

    def test_verify_without_the_cli_fails_when_the_writer_is_made(self) -> None:
        from ckptguard import CkptguardError

        with mock.patch.dict(os.environ, {"PATH": self.dir}), self.assertRaises(CkptguardError) as caught:
            AsyncCheckpointWriter(verify=True)
        self.assertEqual(caught.exception.code, "CLI_NOT_FOUND")

    def test_max_pending_must_be_a_positive_integer(self) -> None:
        for bad in (0, -1, 1.5, "2", True):
            with self.assertRaisesRegex(ValueError, "max_pending"):
                AsyncCheckpointWriter(max_pending=bad)

    def test_writes_still_pending_at_exit_are_finished(self) -> None:
        target = self.path("exit.pt")
        result = run_python(f"""
            import torch
            from ckptguard import AsyncCheckpointWriter
            writer = AsyncCheckpointWriter()
            writer.save({{"w": torch.ones(2_000_000), "step": 3}}, {target!r})
            # no close(): the interpreter exits with the write still queued
        """)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.torch.load(target)["step"], 3)
        self.assertEqual(self.listing(), ["exit.pt"])


if __name__ == "__main__":
    unittest.main()
