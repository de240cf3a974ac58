"""Runs submitted to the real test cluster: the tiny recipe trains as a Slurm job, a failing one is
FAILED in sacct, the dry run prints exactly the script a submit writes, and bad requests reach no Slurm.

The good and the failing job are submitted together (module fixture) so that they run side by side.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from slurm_support import REPO, SUBMITTED, cli, job_count


pytestmark = pytest.mark.slow

COMMON = ("+recipe=gpt/pretrain", "cluster=slurm_test", "tracker=none", "train.steps=5")
DRY_RUN_HEADER = re.compile(r"^# would submit: sbatch --parsable (\S+) .*\n", re.M)


@pytest.fixture(scope="module")
def jobs(slurm_cluster, tmp_path_factory, word_tokenizer):
    """Submit the good job (after its dry run) and start the failing one with cluster.wait=true."""
    base = tmp_path_factory.mktemp("slurm_jobs")
    cache = f"paths.cache_dir={base / 'cache'}"
    good_dir, bad_dir = base / "outputs" / "good", base / "bad"  # good: under its output root (code linked)
    for ext in (".bin", ".idx"):  # shards that pass the compose-time check; only the job reads them
        (base / f"nope{ext}").write_text("not an indexed dataset\n")
    dry = cli(*COMMON, cache, f"paths.output_root={base / 'outputs'}", f"hydra.run.dir={good_dir}", "dry_run=true")
    bad = subprocess.Popen(
        [sys.executable, "-m", "nemotron.train", *COMMON, cache, f"hydra.run.dir={bad_dir}", "cluster.wait=true",
         "data.generate_tiny=false", f"data.prefixes=[{base / 'nope'}]", f"data.tokenizer_path={word_tokenizer}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    good = cli(*COMMON, cache, f"paths.output_root={base / 'outputs'}", f"hydra.run.dir={good_dir}")
    bad_out, bad_err = bad.communicate(timeout=120)
    return {"dry": dry, "good": good, "good_dir": good_dir, "bad_dir": bad_dir,
            "bad": (bad.returncode, bad_out, bad_err)}


def test_dry_run_prints_exactly_the_script_a_submit_writes(jobs):
    dry, good = jobs["dry"], jobs["good"]
    assert dry.returncode == 0, dry.stderr
    header = DRY_RUN_HEADER.search(dry.stdout)
    assert header, dry.stdout[-2000:]
    printed = dry.stdout[header.end():]
    assert good.returncode == 0, good.stdout + good.stderr
    assert header.group(1) == str(jobs["good_dir"] / "job.sbatch")
    assert printed == (jobs["good_dir"] / "job.sbatch").read_text()
    assert "srun" in printed and "RANK=$SLURM_PROCID" in printed


def test_tiny_recipe_trains_to_completion_as_a_slurm_job(jobs, wait_for_job):
    good = jobs["good"]
    job_id = SUBMITTED.search(good.stdout).group(1)
    assert f"tail -f {jobs['good_dir'] / 'train.log'}" in good.stdout
    assert wait_for_job(job_id, timeout_s=90) == ("COMPLETED", "0:0")
    code = jobs["good_dir"] / "code"  # the job ran from the code stored once under its output root
    assert code.is_symlink() and code.resolve().parent == (jobs["good_dir"].parent / ".code").resolve()
    assert (jobs["bad_dir"] / "code").is_dir() and not (jobs["bad_dir"] / "code").is_symlink()  # outside: a copy
    log = (jobs["good_dir"] / "train.log").read_text()
    assert "done | 5/5 steps" in log and "world 1" in log
    assert f"code: {code} (snapshot of" in log  # the run's own path, not the store's
    assert (jobs["good_dir"] / "config.yaml").exists() and (jobs["good_dir"] / "slurm_job.json").exists()


def test_failing_training_is_failed_in_sacct_and_wait_exits_nonzero(jobs, wait_for_job):
    code, out, err = jobs["bad"]
    job_id = SUBMITTED.search(out).group(1)
    assert code == 1, out + err
    assert f"Slurm job {job_id}: FAILED" in out
    assert re.search(r"failed with exit code 1 \(\w+Error: .+\); full log: ", err), err  # the reason, one line
    assert "Traceback" not in out + err and "step" not in err  # the streamed log kept its traceback to itself
    state, exit_code = wait_for_job(job_id)
    assert state == "FAILED" and exit_code != "0:0"
    assert "Traceback (most recent call last)" in (jobs["bad_dir"] / "train.log").read_text()  # where we point


@pytest.mark.parametrize("overrides, message", [
    (["resources.gpus_per_node=16", "resources.procs_per_node=1"],
     "resources.gpus_per_node=16 exceeds cluster.gpus_per_node=8 of cluster=slurm_test"),
    (["cluster.gpus_per_node=16", "resources.gpus_per_node=16", "resources.procs_per_node=1"],
     "resources.gpus_per_node=16 but nodes of cluster.partition=debug have at most 8 GPUs"),
    (["cluster.max_nodes=4", "resources.nodes=3", "train.global_batch_size=12"], "resources.nodes=3 but cluster.partition=debug has 2 nodes"),
    (["cluster.partition=nope"], "cluster.partition=nope: no such partition on this Slurm cluster (sinfo knows: debug)"),
    (["cluster.container_image=nvcr.io/x:1"], "cluster.container_image=nvcr.io/x:1 needs pyxis"),
], ids=["gpus_over_cluster_option", "gpus_over_partition", "nodes_over_partition", "unknown_partition",
        "image_without_pyxis"])
def test_bad_request_is_one_line_and_submits_nothing(slurm_cluster, tmp_path, overrides, message):
    before = job_count()
    result = cli(*COMMON, f"hydra.run.dir={tmp_path / 'run'}", *overrides)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "run" / "job.sbatch").exists()
    assert job_count() == before
