"""The error a failed recipe process raises up to the entry point (standard library only, so
`python -m nemotron.train` can catch it without importing the validation layer first)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from nemotron.common.exit_codes import REFUSED


class TrainingFailed(RuntimeError):
    """The recipe process (or a sweep member on Slurm) exited non-zero: `main` exits with its code.

    Defined here, not in train.py: `python -m nemotron.train` runs that module as `__main__`, so a class
    defined there and imported elsewhere would be a different class."""

    def __init__(
        self, recipe: str, code: int, log_path: Path, message: Optional[str] = None, reason: Optional[str] = None
    ) -> None:
        why = f" ({reason})" if reason else ""
        if reason and code == REFUSED:  # the stage said why: its reason first, then where to look
            message = message or f"{reason} (recipe {recipe} refused its input; full log: {log_path})"
        super().__init__(message or f"recipe {recipe} failed with exit code {code}{why}; full log: {log_path}")
        self.code = code
