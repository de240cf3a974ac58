"""No wait can hang (launchers/wait.py, on the real test cluster): a sweep member cancelled while pending
ends `cluster.wait=true` with a clear state and exit 1; with slurmdbd stopped (by its recorded PID),
`jobs follow` still ends: with the state slurmctld reports, or UNKNOWN after the grace for a job nobody
knows, saying that sacct does not answer. slurmdbd is started again before the test returns."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
from slurm_support import REPO, SUBMITTED, cli, wait_for_log

pytestmark = pytest.mark.slow

BASE = ("+recipe=gpt/pretrain", "cluster=slurm_test", "tracker=none", "train.log_interval=1")


def cluster_module():
    """tests/slurm/cluster.py (a script folder, not a package), as conftest.py loads it."""
    sys.path.insert(0, str(REPO / "tests" / "slurm"))
    import cluster

    return cluster


def python_m(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )


def test_wait_ends_when_a_pending_member_is_cancelled(slurm_cluster, tmp_path):
    sweep = tmp_path / "sweep"
    proc = python_m(
        "nemotron.train",
        *BASE,
        "train.steps=3",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
        "cluster.wait=true",
        "cluster.wait_grace_s=10",
        "cluster.array_parallelism=1",
        "-m",
        "train.seed=1,2",
    )
    lines = []
    for line in proc.stdout:  # the array id is printed before the wait starts
        lines.append(line)
        found = re.search(r"array (\d+): members", line)
        if found:
            break
    assert found, "".join(lines) + proc.stderr.read()
    array_id = found.group(1)
    subprocess.run(["scancel", f"{array_id}_1"], check=True)  # %1: task 1 is still pending behind task 0
    started = time.monotonic()
    out, err = proc.communicate(timeout=240)
    out = "".join(lines) + out
    assert proc.returncode == 1, out[-2000:] + err[-2000:]
    assert f"member 0 (Slurm job {array_id}_0): COMPLETED" in out, out[-2000:]
    assert re.search(rf"member 1 \(Slurm job {array_id}_1\): (CANCELLED|UNKNOWN)", out), out[-2000:]
    assert "1 of 2 sweep member(s) of gpt/pretrain failed: 1" in err
    assert time.monotonic() - started < 200


def test_follow_ends_while_the_accounting_daemon_is_stopped(slurm_cluster, tmp_path):
    cluster, root = cluster_module(), slurm_cluster.root
    run_dir = tmp_path / "long"
    result = cli(*BASE, "train.steps=100000", f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = SUBMITTED.search(result.stdout).group(1)
    wait_for_log(run_dir / "train.log", re.compile(r"^step \d+/", re.M), timeout_s=120)
    lost = tmp_path / "lost"  # a record of a job neither sacct nor squeue knows
    lost.mkdir()
    (lost / "slurm_job.json").write_text(
        json.dumps({"job_id": "99999999", "recipe": "gpt/pretrain", "run_dir": str(lost)})
    )
    cluster.stop_daemon(root, "slurmdbd")
    follow = nobody = None
    try:
        assert subprocess.run(["sacct", "-n", "-j", job_id], capture_output=True, timeout=30).returncode != 0
        follow = python_m("nemotron.jobs", "follow", str(run_dir), "--poll", "0.5", "--grace", "5")
        time.sleep(3)
        assert follow.poll() is None  # still following: squeue knows the running job
        subprocess.run(["scancel", job_id], check=True)
        out, err = follow.communicate(timeout=120)
        assert follow.returncode == 1 and f"Slurm job {job_id}: CANCELLED" in err, out[-1000:] + err
        assert "step " in out  # it streamed the log meanwhile

        started = time.monotonic()
        nobody = python_m("nemotron.jobs", "follow", str(lost), "--poll", "0.5", "--grace", "5")
        out, err = nobody.communicate(timeout=60)
        assert nobody.returncode == 1 and time.monotonic() - started < 40, err
        assert "neither sacct nor squeue has known Slurm job 99999999 for 5 s" in err and "slurmdbd" in err, err
    finally:
        for proc in (follow, nobody):
            if proc is not None and proc.poll() is None:
                proc.kill()  # a failed assertion must not leave a follower behind
                proc.wait()
        subprocess.run(["scancel", job_id], capture_output=True)
        cluster.restart_slurmdbd(root)
    assert subprocess.run(["sacct", "-n", "-j", job_id], capture_output=True, timeout=30).returncode == 0
