"""A job stopped by Slurm's signal saves a checkpoint, requeues itself and resumes in the same run dir,
continuing the same MLflow run (the session's real tracking server on 127.0.0.1): a two-node job, whose
ranks stop together, and one member of a sweep, which requeues alone."""

from __future__ import annotations

import re
import subprocess

import pytest
from slurm_support import SUBMITTED, cli, wait_for_log

pytestmark = pytest.mark.slow

STEP = re.compile(r"^step (\d+)/", re.M)


def test_two_node_job_stops_together_requeues_and_resumes_its_mlflow_run(
    slurm_cluster, wait_for_job, mlflow_server, tmp_path
):
    from mlflow import MlflowClient

    run_dir = tmp_path / "run"
    result = cli(
        "+recipe=gpt/pretrain",
        "cluster=slurm_test",
        "resources.nodes=2",
        "tracker=mlflow",
        f"tracker.uri={mlflow_server.uri}",
        "tracker.experiment=requeue",
        "train.steps=20",
        "train.log_interval=1",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = SUBMITTED.search(result.stdout).group(1)
    wait_for_log(run_dir / "train.log", re.compile(r"^step [2-9]/20", re.M), timeout_s=120)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # what Slurm sends before the time limit
    assert wait_for_job(job_id, timeout_s=180) == ("COMPLETED", "0:0")

    log = (run_dir / "train.log").read_text()
    stopped = int(re.search(r"preempted \| SIGUSR2 at step (\d+)/20: checkpoint saved", log).group(1))
    # both ranks' recipes stopped at the same step and exited 75 (each rank's submitit task says so)
    assert log.count("stopped after saving a checkpoint (exit 75)") == 2, log[-3000:]
    assert "rank 0: stopped" in log and "rank 1: stopped" in log
    assert "requeueing (restart 1 of 3)" in log and "restart 1, run dir" in log, log[-3000:]
    assert f"done | 20/20 steps (resumed at {stopped})" in log and "world 2 (TP1 PP1 CP1 EP1 DP2)" in log
    assert [int(s) for s in STEP.findall(log)] == list(range(1, 21))  # nothing lost, nothing trained twice
    history = subprocess.run(
        ["sacct", "-n", "-D", "-X", "-P", "-j", job_id, "-o", "State"], capture_output=True, text=True
    ).stdout.split()
    assert history[0] == "REQUEUED" and history[-1] == "COMPLETED", history

    client = MlflowClient(tracking_uri=mlflow_server.uri)
    runs = client.search_runs([client.get_experiment_by_name("requeue").experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]  # the requeued attempt continued the same run
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["slurm.job_id"] == job_id
    assert run.data.tags["nemotron.attempts"] == "2" and run.data.tags["nemotron.code"] == str(run_dir / "code")
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss")) == list(range(1, 21))
    assert "job.sbatch" in {a.path.split("/")[-1] for a in client.list_artifacts(run.info.run_id, "slurm")}


def test_a_signalled_sweep_member_requeues_alone(slurm_cluster, wait_for_job, tmp_path):
    sweep = tmp_path / "sweep"
    result = cli(
        "+recipe=gpt/pretrain",
        "cluster=slurm_test",
        "tracker=none",
        "train.steps=30",
        "train.log_interval=1",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
        "-m",
        "train.seed=1,2",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    array_id = re.search(r"array (\d+): members", result.stdout).group(1)
    wait_for_log(sweep / "1" / "train.log", re.compile(r"^step [3-9]/30", re.M), timeout_s=120)
    subprocess.run(["scancel", "--signal=USR2", f"{array_id}_1"], check=True)
    for task in (0, 1):
        assert wait_for_job(f"{array_id}_{task}", timeout_s=180) == ("COMPLETED", "0:0")

    def history(task):
        return subprocess.run(
            ["sacct", "-n", "-D", "-X", "-P", "-j", f"{array_id}_{task}", "-o", "State"], capture_output=True, text=True
        ).stdout.split()

    assert history(0) == ["COMPLETED"], history(0)  # the other member ran on untouched
    assert history(1) == ["REQUEUED", "COMPLETED"], history(1)
    log = (sweep / "1" / "train.log").read_text()
    stopped = int(re.search(r"preempted \| SIGUSR2 at step (\d+)/30", log).group(1))
    assert f"done | 30/30 steps (resumed at {stopped})" in log and "task 1) on" in log
