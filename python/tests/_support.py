"""Shared helpers of the companion's tests: temp directories, real subprocesses, and skips
for what this interpreter lacks (torch; the ckptguard CLI on PATH)."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from typing import Callable, Dict, Optional

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_CLI = shutil.which("ckptguard") is not None

requires_torch = unittest.skipUnless(HAS_TORCH, "torch is not importable by this interpreter")
requires_cli = unittest.skipUnless(HAS_CLI, "the ckptguard CLI is not on PATH")


class TempDirTestCase(unittest.TestCase):
    """Gives each test ``self.dir``, removed afterwards."""

    def setUp(self) -> None:
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="ckptguard-py-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def listing(self, directory: Optional[str] = None) -> list:
        return sorted(os.listdir(directory or self.dir))


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def run_python(code: str, *, env: Optional[Dict[str, str]] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter (this one) with the companion importable."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=child_env(env), timeout=timeout, check=False)


def start_python(code: str, *, env: Optional[Dict[str, str]] = None, stdin: Optional[int] = None) -> subprocess.Popen:
    """Starts ``code`` like run_python; ``stdin=subprocess.PIPE`` to talk to it."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env(env))


def wait_for(condition: Callable[[], bool], *, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def temp_files(directory: str) -> list:
    """Names our atomic writes use while in progress (``.NAME.PID.XXXX.tmp``)."""
    return sorted(n for n in os.listdir(directory) if n.startswith(".") and n.endswith(".tmp"))
