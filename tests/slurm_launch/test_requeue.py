"""A job stopped by Slurm's signal saves a checkpoint, requeues itself and resumes in the same run dir."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from tests.slurm_launch.test_slurm_jobs import SUBMITTED, cli

pytestmark = pytest.mark.slow

STEP = re.compile(r"^step (\d+)/", re.M)


def wait_for_log(path, pattern, timeout_s):
    """The first match of `pattern` in the file at `path`, waiting for it to appear."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        found = pattern.search(text)
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{pattern.pattern!r} not in {path} after {timeout_s} s:\n{text[-2000:]}")


def test_interrupted_job_requeues_and_resumes_from_its_checkpoint(slurm_cluster, wait_for_job, tmp_path):
    run_dir = tmp_path / "run"
    result = cli("+recipe=gpt/pretrain", "cluster=slurm_test", "tracker=jsonl", "train.steps=30",
                 "train.log_interval=1", f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = SUBMITTED.search(result.stdout).group(1)
    wait_for_log(run_dir / "train.log", re.compile(r"^step [3-9]/30", re.M), timeout_s=120)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # what Slurm sends before the time limit
    assert wait_for_job(job_id, timeout_s=180) == ("COMPLETED", "0:0")
    log = (run_dir / "train.log").read_text()
    stopped = int(re.search(r"preempted \| SIGUSR2 at step (\d+)/30: checkpoint saved", log).group(1))
    assert "requeueing (restart 1 of 3)" in log and "restart 1, run dir" in log, log[-3000:]
    assert f"done | 30/30 steps (resumed at {stopped})" in log, log[-3000:]
    steps = [int(s) for s in STEP.findall(log)]
    assert steps == list(range(1, stopped + 1)) + list(range(stopped + 1, 31)), steps  # nothing lost or redone
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e["status"] for e in events if "status" in e] == ["KILLED", "FINISHED"]  # one tracker run, continued
    history = subprocess.run(["sacct", "-n", "-D", "-X", "-P", "-j", job_id, "-o", "State"],
                             capture_output=True, text=True).stdout.split()
    assert history[0] == "REQUEUED" and history[-1] == "COMPLETED", history
