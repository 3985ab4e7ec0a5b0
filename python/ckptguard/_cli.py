"""Finding and running the ``ckptguard`` command-line tool, the one judge of a checkpoint."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import List, Sequence

from ._errors import CkptguardError

CLI_NAME = "ckptguard"


def find_cli() -> str:
    """The ``ckptguard`` executable on PATH, or CkptguardError ``CLI_NOT_FOUND``."""
    found = shutil.which(CLI_NAME)
    if found is None:
        raise CkptguardError(
            "CLI_NOT_FOUND",
            "the ckptguard command is not on PATH (install it with `npm install -g ckptguard`, "
            "or add node_modules/.bin to PATH); it is needed to verify checkpoints and find the latest one",
        )
    return found


def run_cli(args: Sequence[str], *, timeout: float = 600.0) -> "subprocess.CompletedProcess[str]":
    """Runs ``ckptguard ARGS`` and returns it whatever its exit code (stdout and stderr captured)."""
    command: List[str] = [find_cli(), *args]
    return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, check=False)


def verify_files(paths: Sequence[str]) -> None:
    """Runs ``ckptguard verify --json`` on ``paths``; returns when every file is valid.

    Raises CkptguardError whose code is the first error problem of the first rejected file
    (``TRUNCATED``, ``CRC_MISMATCH``, ``UNSAFE_GLOBAL``, ...), with that file's report attached.
    """
    result = run_cli(["verify", "--json", *[os.fspath(p) for p in paths]])
    if result.returncode == 0:
        return
    try:
        parsed = json.loads(result.stdout)
        reports = [r for r in parsed["files"] if r["verdict"] != "valid"]
    except (ValueError, KeyError, TypeError):
        raise CkptguardError("CLI_FAILED", f"ckptguard verify exited with {result.returncode}: "
                             f"{result.stderr.strip() or result.stdout.strip()}") from None
    if not reports:
        raise CkptguardError("CLI_FAILED", f"ckptguard verify exited with {result.returncode} "
                             "but reported every file valid")
    report = reports[0]
    problems = report.get("problems") or []
    first = next((p for p in problems if p.get("severity") == "error"), problems[0] if problems else None)
    code = first["code"] if first else str(report["verdict"]).upper()
    message = f"ckptguard verify: {report['verdict']}: {first['message'] if first else 'rejected'}"
    raise CkptguardError(code, message, path=report.get("path"), report=report)
