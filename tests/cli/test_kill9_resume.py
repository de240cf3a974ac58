"""A real kill -9: the launcher and its training process are SIGKILLed mid-run (no signal handler, no
checkpoint on the way out, possibly mid-save), the same command is run again into the same run
directory, and every step's loss equals an uninterrupted run's, bit for bit. Pretraining and DPO.

The in-process resume tests (tests/runtime/test_checkpoint.py, test_dpo_train.py) interrupt a patched
step; here nothing is patched: the processes die as they would when a node is lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import REPO

pytestmark = pytest.mark.slow

STEPS, SAVE_EVERY, KILL_AFTER = 24, 4, 10
"""Steps of each run, the checkpoint interval, and the step whose loss line triggers the kill."""
CASES = {
    "pretrain": ["+recipe=gpt/pretrain"],
    "dpo": ["+recipe=gpt/dpo", "checkpoint.pretrained=null", "train.eval_interval=0"],
}


def _command(recipe_args, run_dir: Path, cache: Path) -> list:
    return [
        sys.executable, "-m", "nemotron.train", *recipe_args, "cluster=local", "tracker=jsonl",
        f"paths.cache_dir={cache}", f"hydra.run.dir={run_dir}", f"train.steps={STEPS}",
        f"checkpoint.save_interval={SAVE_EVERY}", "train.log_interval=1", "model.hidden_dropout=0.1",
    ]  # fmt: skip


def _losses(run_dir: Path) -> dict:
    """Step -> loss as logged last (a resumed run logs the steps after its checkpoint again)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def _steps_logged(run_dir: Path) -> int:
    try:
        return max(_losses(run_dir), default=0)
    except (OSError, ValueError):  # not written yet, or a line half-written at this instant
        return 0


def _run(command, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout)


def _kill_after(command, run_dir: Path, step: int, timeout_s: float = 300) -> int:
    """Start `command` in a session of its own; SIGKILL the whole group once `step` is logged."""
    proc = subprocess.Popen(
        command, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout_s
    try:
        while _steps_logged(run_dir) < step and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the trainer it started
        proc.wait(timeout=60)
    return proc.returncode


@pytest.mark.parametrize("stage", sorted(CASES))
def test_killed_run_rerun_in_place_repeats_every_loss_bitwise(stage, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "kill9_cache"
    straight_dir, killed_dir = tmp_path_factory.mktemp(f"{stage}_straight"), tmp_path_factory.mktemp(stage)
    straight = _run(_command(CASES[stage], straight_dir, cache))
    assert straight.returncode == 0, straight.stdout[-3000:] + straight.stderr[-3000:]

    command = _command(CASES[stage], killed_dir, cache)
    assert _kill_after(command, killed_dir, KILL_AFTER) == -signal.SIGKILL
    logged = _steps_logged(killed_dir)
    assert KILL_AFTER <= logged < STEPS, f"killed at step {logged}: not mid-run"

    rerun = _run(command)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    log = (killed_dir / "train.log").read_text()
    resumed_at = int(log.split("resumed from ")[-1].split(" at step ")[1].split()[0])
    assert SAVE_EVERY <= resumed_at <= logged and resumed_at % SAVE_EVERY == 0, log[-2000:]
    assert f"done | {STEPS}/{STEPS} steps (resumed at {resumed_at})" in log
    expected = _losses(straight_dir)
    assert sorted(expected) == list(range(1, STEPS + 1))
    assert _losses(killed_dir) == expected  # every step, bitwise (JSON keeps a float64 exactly)
