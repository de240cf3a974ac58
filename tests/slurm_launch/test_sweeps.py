"""`-m` on a Slurm cluster: one job array per sweep (split at the array limit, a parallelism cap,
one array per job shape), every member checked before anything is submitted, code frozen at submit."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from slurm_support import REPO, cli, job_count

pytestmark = pytest.mark.slow

BASE = ("+recipe=gpt/pretrain", "cluster=slurm_test", "tracker=none", "train.steps=3", "train.log_interval=1")
ARRAY = re.compile(r"array (\d+): members")


def test_two_member_sweep_runs_as_one_array_each_member_with_its_own_config(slurm_cluster, wait_for_job,
                                                                                mlflow_server, tmp_path):
    from mlflow import MlflowClient

    sweep = tmp_path / "sweep"
    result = cli(*BASE[:2], "tracker=mlflow", f"tracker.uri={mlflow_server.uri}", "tracker.experiment=sweep2",
                 *BASE[3:], f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}",
                 "-m", "optim.lr=1e-3,2e-3")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "submitted 2 sweep member(s) as 1 Slurm job array(s)" in result.stdout
    array_id = ARRAY.search(result.stdout).group(1)
    for i, lr in enumerate((1e-3, 2e-3)):
        assert wait_for_job(f"{array_id}_{i}", timeout_s=120) == ("COMPLETED", "0:0")
        run_dir = sweep / str(i)
        assert f"\n  lr: {lr}\n" in (run_dir / "config.yaml").read_text()
        record = json.loads((run_dir / "slurm_job.json").read_text())
        assert record["job_id"] == f"{array_id}_{i}" and record["overrides"][-1] == f"optim.lr={lr:g}"
        log = (run_dir / "train.log").read_text()
        assert "done | 3/3 steps" in log, log[-2000:]
        assert f"task {i}) on" in log and f"code: {sweep / 'code'} (snapshot of" in log  # the frozen copy ran
    assert (sweep / "code" / "SNAPSHOT.json").exists() and (sweep / "code" / "nemotron" / "train.py").exists()
    assert len(json.loads((sweep / "sweep.json").read_text())["arrays"]) == 1

    client = MlflowClient(tracking_uri=mlflow_server.uri)
    runs = client.search_runs([client.get_experiment_by_name("sweep2").experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parent) == 1 and parent[0].data.tags["nemotron.sweep.submitted_to"] == f"slurm: {sweep}"
    assert len(children) == 2 and {c.data.tags["mlflow.parentRunId"] for c in children} == {parent[0].info.run_id}
    assert {c.data.tags["slurm.array_task_id"] for c in children} == {"0", "1"}
    assert {c.info.run_name for c in children} == {"0: optim.lr=0.001", "1: optim.lr=0.002"}
    artifacts = client.list_artifacts(children[0].info.run_id, "slurm")
    assert [a.path.split("/")[-1] for a in artifacts] == ["array_0.sbatch"]


def test_sweep_is_split_at_the_array_limit_with_a_parallelism_cap(slurm_cluster, tmp_path):
    result = cli(*BASE, f"hydra.sweep.dir={tmp_path / 'sweep'}", "dry_run=true", "cluster.max_array_size=2",
                 "cluster.array_parallelism=1", "-m", "train.seed=1,2,3,4,5")
    assert result.returncode == 0, result.stderr
    scripts = re.findall(r"# would submit: sbatch --parsable (\S+) \((\d) members\)", result.stdout)
    assert [n for _, n in scripts] == ["2", "2", "1"]
    assert result.stdout.count("#SBATCH --array=0-1%1") == 2 and "#SBATCH --array=0-0%1" in result.stdout
    sweep = tmp_path / "sweep"  # Hydra itself writes multirun.yaml there; the dry run adds nothing
    assert not list(sweep.glob("*.sbatch")) and not (sweep / "0").exists() and not (sweep / "code").exists()


def test_members_asking_for_different_resources_get_their_own_arrays(slurm_cluster, tmp_path):
    result = cli(*BASE, f"hydra.sweep.dir={tmp_path / 'sweep'}", "dry_run=true",
                 "-m", "resources.nodes=1,2", "optim.lr=1e-3,2e-3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("# would submit:") == 2
    assert result.stdout.count("#SBATCH --nodes=1") == 1 and result.stdout.count("#SBATCH --nodes=2") == 1


@pytest.mark.parametrize("sweep, message", [
    (["model.num_layrs=2,4"], "model.num_layrs: unknown key (did you mean num_layers?) (all 2 sweep members; nothing started)"),
    (["train.global_batch_size=8,7"], "(sweep member(s) 1 of 2; nothing started)"),
], ids=["unknown_key", "one_bad_member"])
def test_a_bad_sweep_is_refused_in_one_line_before_anything_reaches_slurm(slurm_cluster, tmp_path, sweep, message):
    before = job_count()
    result = cli(*BASE, f"hydra.sweep.dir={tmp_path / 'sweep'}", "-m", *sweep)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert job_count() == before and not (tmp_path / "sweep" / "sweep.json").exists()


def test_wait_follows_every_member_and_fails_when_one_failed(slurm_cluster, tmp_path, word_tokenizer):
    sweep = tmp_path / "sweep"
    # member 1 names a tokenizer the tiny data was not prepared with: only its job can see that, and fails
    result = cli(*BASE, f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}", "cluster.wait=true",
                 "-m", f"data.tokenizer_path=null,{word_tokenizer}")
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    array_id = ARRAY.search(result.stdout).group(1)
    assert f"member 0 (Slurm job {array_id}_0): COMPLETED" in result.stdout
    assert f"member 1 (Slurm job {array_id}_1): FAILED, exit 1; log {sweep / '1' / 'train.log'}" in result.stdout
    assert result.stderr.strip() == "error: 1 of 2 sweep member(s) of gpt/pretrain failed: 1 (each member's " \
                                    "train.log is named above)"
    listed = subprocess.run([sys.executable, "-m", "nemotron.jobs", "list", "--root", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO)
    rows = {line.split()[0]: line.split()[2] for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert rows == {f"{array_id}_0": "COMPLETED", f"{array_id}_1": "FAILED"}, listed.stdout
