"""`python -m nemotron.tracking` answers an unknown run or a malformed store in one `error:` line."""

from __future__ import annotations

import pytest
from cli_support import run_module


@pytest.mark.parametrize(
    "args, expect",
    [
        (["compare", "not-a-run-id"], "not-a-run-id: not a sweep directory and not a parent run of sqlite:///"),
        (["compare", "x", "--uri", "localhost:5000"], "looks like host:port without a scheme"),
    ],
)
def test_unknown_runs_and_stores_are_one_line(args, expect, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    full = [*args, "--uri", uri] if "--uri" not in args else args
    result = run_module("nemotron.tracking", *full, cwd=tmp_path, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], result.stderr
