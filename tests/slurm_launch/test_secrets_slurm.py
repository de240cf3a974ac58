"""Secrets on the real test cluster: a Slurm job (tracked into a real MLflow server) and a one-member
Slurm sweep (a job array; its member's files under the sweep dir) of the fixture/secrets recipe leave
no secret value in any file under the output root, the MLflow store or its artifacts, or the job logs,
outside each run's one 0600 `secrets.env`; and each job received every secret (the recipe's
`received.json` digests). The code snapshot under `code/` is a copy of the source tree (which holds
the fixture's runspec literal) and is not read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from secrets_support import ARGS, ENV, SECRETS, assert_received, files_under, leaks, secrets_files
from slurm_support import REPO

pytestmark = pytest.mark.slow

JOB = re.compile(r"as Slurm job (\d+)")
ARRAY = re.compile(r"array (\d+): members")


def submit(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    out = subprocess.run(
        [sys.executable, "-m", "nemotron.train", *ARGS, "cluster=slurm_test", *args],
        capture_output=True,
        text=True,
        env={**env, **ENV, "PYTHONUNBUFFERED": "1"},
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    for value in SECRETS.values():
        assert value not in out.stdout + out.stderr
    return out


def without_snapshots(root: Path) -> list:
    return [(f, name) for f, name in leaks(root) if "/code/" not in f]


def test_slurm_job_and_sweep_write_no_secret_and_the_jobs_get_them(
    slurm_cluster, wait_for_job, mlflow_server, tmp_path
):
    out_root, cache = tmp_path / "outputs", f"paths.cache_dir={tmp_path / 'cache'}"
    job = submit(
        "tracker=mlflow",
        f"tracker.uri={mlflow_server.uri}",
        "tracker.experiment=secrets_slurm",
        f"paths.output_root={out_root}",
        cache,
        f"hydra.run.dir={out_root / 'job'}",
    )
    sweep = submit(
        "tracker=jsonl",
        f"paths.output_root={out_root}",
        f"{cache}_sweep",
        f"hydra.sweep.dir={out_root / 'sweep'}",
        "-m",
        "optim.lr=1e-3",
    )
    assert wait_for_job(JOB.search(job.stdout).group(1), timeout_s=180) == ("COMPLETED", "0:0")
    array = ARRAY.search(sweep.stdout).group(1)
    assert wait_for_job(f"{array}_0", timeout_s=180) == ("COMPLETED", "0:0")
    runs = [out_root / "job", out_root / "sweep" / "0"]
    for run_dir in runs:
        assert "done | 2/2 steps" in (run_dir / "train.log").read_text()
        assert "${oc.env:DB_PASSWORD}" in (run_dir / "config.yaml").read_text()
        assert_received(run_dir)
    assert files_under(mlflow_server.root / "artifacts") > 0
    assert len(secrets_files(out_root)) == 2  # one per job, 0600: the only place the values are
    assert without_snapshots(out_root) == [] and leaks(mlflow_server.root) == []
