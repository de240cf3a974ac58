"""Helpers shared by the Slurm tests (not fixtures: those are in conftest.py)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from cli_support import run_cli

REPO = Path(__file__).resolve().parents[2]
SUBMITTED = re.compile(r"submitted gpt/pretrain as Slurm job (\d+)")
"""What a plain submit prints; group 1 is the job id."""


def job_count() -> int:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID", "-S", "now-1days"], capture_output=True, text=True)
    return len(out.stdout.split())


def cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m nemotron.train ARGS` in the repo (SLURM_CONF inherited)."""
    return run_cli(*args)


def wait_for_log(path: Path, pattern: "re.Pattern[str]", timeout_s: float) -> "re.Match[str]":
    """The first match of `pattern` in the file at `path`, waiting for it to appear."""
    deadline, text = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        found = pattern.search(text)
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{pattern.pattern!r} not in {path} after {timeout_s} s:\n{text[-2000:]}")
