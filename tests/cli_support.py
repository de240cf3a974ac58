"""Running the entry point as a subprocess, for any test module (a plain module: `from conftest import`
breaks when pytest is given test files from folders with conftest.py files of their own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_module(module: str, *args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 120):
    """Run `python -m MODULE ARGS` in the repo; return the CompletedProcess (text, both streams).
    HYDRA_FULL_ERROR is dropped so the output is what a user sees; `env` adds to the inherited one."""
    full_env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=timeout,
    )


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 120):
    """`python -m nemotron.train ARGS` (run_module)."""
    return run_module("nemotron.train", *args, env=env, cwd=cwd, timeout=timeout)
