"""GRPO and DPO as jobs on the real test cluster, the way a user chains them: a tiny gpt/pretrain job
leaves a checkpoint under paths.output_root, then gpt/rl (`checkpoint.pretrained=newest:gpt/pretrain`,
tracked to metrics.jsonl) and gpt/dpo (its default `newest:gpt/sft|gpt/pretrain`, tracked to the
session's MLflow server) start from it side by side. The GRPO job is signalled (SIGUSR2, Slurm's
warning before the time limit) mid-run: it saves, requeues itself and resumes from that checkpoint.

One module-scoped setup submits everything; the tests read what the jobs left.
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from slurm_support import cli, wait_for_log

pytestmark = pytest.mark.slow

SUBMITTED = re.compile(r"submitted (\S+) as Slurm job (\d+)")
RL_STEPS, DPO_STEPS = 12, 3
RL_STEP = re.compile(r"^rl step (\d+)/", re.M)


def _submit(*args: str) -> str:
    result = cli("cluster=slurm_test", "train.log_interval=1", *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return SUBMITTED.search(result.stdout).group(2)


@pytest.fixture(scope="module")
def jobs(slurm_cluster, wait_for_job, mlflow_server, tmp_path_factory):
    """Pretrain, then GRPO (signalled once, requeued) and DPO; their run dirs and final states."""
    base = tmp_path_factory.mktemp("post_training")
    outputs = base / "outputs"
    common = [f"paths.output_root={outputs}", f"paths.cache_dir={base / 'cache'}"]
    pre = _submit(
        "+recipe=gpt/pretrain",
        *common,
        "tracker=mlflow",  # registers its checkpoint: DPO's lineage names it
        f"tracker.uri={mlflow_server.uri}",
        "tracker.experiment=pretrain-slurm",
        "train.steps=3",
        f"hydra.run.dir={outputs / 'gpt/pretrain/run'}",
    )
    assert wait_for_job(pre, timeout_s=120) == ("COMPLETED", "0:0")
    dirs = {"rl": outputs / "gpt/rl/run", "dpo": outputs / "gpt/dpo/run"}
    rl_args = [
        "+recipe=gpt/rl",
        *common,
        "tracker=jsonl",
        f"train.steps={RL_STEPS}",
        "checkpoint.pretrained=newest:gpt/pretrain",
        "rl.group_size=4",
        "rl.max_new_tokens=4",
        f"hydra.run.dir={dirs['rl']}",
    ]
    dpo_args = [
        "+recipe=gpt/dpo",
        *common,
        "tracker=mlflow",
        f"tracker.uri={mlflow_server.uri}",
        "tracker.experiment=dpo-slurm",
        f"train.steps={DPO_STEPS}",
        "train.eval_interval=0",
        "train.global_batch_size=8",
        f"hydra.run.dir={dirs['dpo']}",
    ]
    with ThreadPoolExecutor(2) as pool:  # two submits side by side (each CLI start is a few seconds)
        rl, dpo = pool.map(lambda args: _submit(*args), [rl_args, dpo_args])
    wait_for_log(dirs["rl"] / "train.log", re.compile(r"^rl step [2-9]/", re.M), timeout_s=120)
    subprocess.run(["scancel", "--signal=USR2", rl], check=True)
    states = {"rl": wait_for_job(rl, timeout_s=180), "dpo": wait_for_job(dpo, timeout_s=180)}
    return {"dirs": dirs, "states": states, "ids": {"rl": rl, "dpo": dpo}, "pretrain": outputs / "gpt/pretrain/run"}


def _log(jobs, stage: str) -> str:
    return (jobs["dirs"][stage] / "train.log").read_text()


def test_grpo_job_completes_from_the_pretrain_checkpoint_logging_rewards(jobs):
    assert jobs["states"]["rl"] == ("COMPLETED", "0:0"), _log(jobs, "rl")[-3000:]
    log = _log(jobs, "rl")
    source = jobs["pretrain"] / "checkpoints/iter_0000003"
    assert log.count(f"initialised from pretrained weights {source}") == 1  # the fresh start only
    assert log.count(f"reference model: {source} (step 3), frozen") == 2  # reloaded on resume too
    rows = [json.loads(line) for line in (jobs["dirs"]["rl"] / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward_mean" in r]
    assert sorted(r["step"] for r in steps) == list(range(1, RL_STEPS + 1))  # each step once, resume too
    assert all(0.0 <= r["reward_mean"] <= 2.0 and r["kl"] >= 0.0 for r in steps)
    final = jobs["dirs"]["rl"] / f"checkpoints/iter_{RL_STEPS:07d}"
    assert (final / "nemotron_checkpoint.json").exists()


def test_signalled_grpo_job_requeues_and_resumes_from_its_checkpoint(jobs):
    log = _log(jobs, "rl")
    stopped = int(re.search(rf"preempted \| SIGUSR2 at step (\d+)/{RL_STEPS}: checkpoint saved", log).group(1))
    assert "requeueing (restart 1 of 3)" in log, log[-3000:]
    assert f"done | {RL_STEPS}/{RL_STEPS} steps (resumed at {stopped})" in log
    assert [int(s) for s in RL_STEP.findall(log)] == list(range(1, RL_STEPS + 1))  # nothing twice
    history = subprocess.run(
        ["sacct", "-n", "-D", "-X", "-P", "-j", jobs["ids"]["rl"], "-o", "State"], capture_output=True, text=True
    ).stdout.split()
    assert history[0] == "REQUEUED" and history[-1] == "COMPLETED", history


def test_dpo_job_completes_from_the_pretrain_checkpoint_tracking_accuracies_in_mlflow(jobs, mlflow_server):
    from mlflow import MlflowClient

    assert jobs["states"]["dpo"] == ("COMPLETED", "0:0"), _log(jobs, "dpo")[-3000:]
    log = _log(jobs, "dpo")
    source = jobs["pretrain"] / "checkpoints/iter_0000003"
    assert f"reference model: {source} (step 3), frozen" in log
    assert f"initialised from pretrained weights {source}" in log
    assert (jobs["dirs"]["dpo"] / f"checkpoints/iter_{DPO_STEPS:07d}/nemotron_checkpoint.json").exists()
    client = MlflowClient(tracking_uri=mlflow_server.uri)
    (run,) = client.search_runs([client.get_experiment_by_name("dpo-slurm").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["slurm.job_id"] == jobs["ids"]["dpo"]
    history = client.get_metric_history(run.info.run_id, "rewards/accuracies")
    assert sorted(m.step for m in history) == list(range(1, DPO_STEPS + 1))
    assert all(0.0 <= m.value <= 1.0 for m in history)
    inputs = {i.strip().split("@")[0] for i in run.data.tags["nemotron.inputs"].split(",")}
    assert inputs == {"checkpoint/gpt/pretrain", "dpo_data/dpo_tiny"}  # the pretrain job's checkpoint
