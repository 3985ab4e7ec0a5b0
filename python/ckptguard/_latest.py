"""Resume logic in one line: ``ckptguard latest`` picks the checkpoint, Python loads it."""
from __future__ import annotations

import json
import os
import re
from typing import Any, List, Mapping, Optional

from ._atomic import PathLike
from ._cli import run_cli
from ._errors import CkptguardError

# The CLI's one-line errors: `ckptguard: [FILE: ]CODE: message` (src/cli/run-main.ts).
_ERROR_LINE = re.compile(r"^ckptguard: (?:.*?: )?([A-Z][A-Z0-9_]+): (.*)$", re.MULTILINE)
# False once a CLI has said its `latest` takes no --json (older than the flag): not asked again.
_latest_takes_json = True


def latest_checkpoint(directory: PathLike, *, best: bool = False, kind: Optional[str] = None,
                      expect: Optional[Mapping[str, Any]] = None, **expect_kwargs: Any) -> Optional[str]:
    """The newest checkpoint under ``directory`` that is valid, complete and finished writing,
    as chosen by ``ckptguard latest`` (the CLI must be on PATH), or None when there is none
    (a directory that does not exist yet holds none)::

        resume = latest_checkpoint("ckpt/", config__hidden=64)

    Each keyword is an expectation the checkpoint must meet, ``--expect PATH=VALUE`` with
    VALUE as JSON: a double underscore in the name stands for a dot (``config__lr=3e-4`` is
    ``config.lr``), and ``expect={"config.lr": 3e-4}`` takes any dotted path. ``best=True``
    picks the best by the run's metric instead of the newest; ``kind="any"`` accepts files
    without optimizer state (``ckptguard latest --kind``).

    Raises CkptguardError for anything but "no checkpoint qualifies": ``CLI_NOT_FOUND``, or the
    CLI's own error code (``USAGE`` for a malformed expectation, ``PERMISSION_DENIED``, ...).
    """
    directory = os.fspath(directory)
    if not os.path.exists(directory):
        return None
    args: List[str] = ["latest", directory, "--quiet"]
    if best:
        args.append("--best")
    if kind is not None:
        args += ["--kind", kind]
    expectations = {**(expect or {}), **{key.replace("__", "."): value for key, value in expect_kwargs.items()}}
    for path, value in expectations.items():
        args += ["--expect", f"{path}={json.dumps(value)}"]

    global _latest_takes_json
    result = run_cli([*args, "--json"]) if _latest_takes_json else None
    if result is not None and result.returncode == 2 and "unknown option '--json'" in result.stderr:
        _latest_takes_json = False
        result = None
    if result is None:
        result = run_cli(args)  # a CLI whose latest has no --json prints the bare path
        if result.returncode == 0:
            return result.stdout.strip() or None
    elif result.returncode == 0:
        return _path_from_json(result.stdout)
    error = _ERROR_LINE.findall(result.stderr)
    code, message = error[-1] if error else ("CLI_FAILED", result.stderr.strip() or f"exited with {result.returncode}")
    if code == "NO_VALID_CHECKPOINT":
        return None
    raise CkptguardError(code, f"ckptguard latest: {message}", path=directory)


def _path_from_json(stdout: str) -> Optional[str]:
    try:
        parsed = json.loads(stdout)
    except ValueError:
        raise CkptguardError("CLI_FAILED", f"ckptguard latest --json printed no JSON: {stdout.strip()[:200]!r}") from None
    path = parsed.get("path") if isinstance(parsed, dict) else None
    return path if isinstance(path, str) and path else None
