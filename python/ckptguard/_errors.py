"""The one exception type of the companion, mirroring the CLI's errors: a stable code, the
path concerned and, for a failed verification, the CLI's report."""
from __future__ import annotations

from typing import Any, Dict, Optional


class CkptguardError(Exception):
    """A ckptguard-specific failure.

    ``code`` is stable and UPPER_SNAKE: a problem code from ``ckptguard verify`` (``TRUNCATED``,
    ``CRC_MISMATCH``, ...) when a checkpoint was rejected, or one of the companion's own:
    ``CLI_NOT_FOUND`` (no ``ckptguard`` on PATH), ``CLI_FAILED`` (the CLI could not answer),
    ``FUTURE_VERSION`` (a completion marker newer than this reader).
    """

    def __init__(self, code: str, message: str, *, path: Optional[str] = None,
                 report: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path
        #: The ``ckptguard verify --json`` report of the rejected file, when there is one.
        self.report = report
        #: Where ``keep_failed=True`` moved the rejected temp file, when it did.
        self.failed_path: Optional[str] = None

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        kept = f" (kept at {self.failed_path})" if self.failed_path else ""
        return f"{where}{self.code}: {self.message}{kept}"
