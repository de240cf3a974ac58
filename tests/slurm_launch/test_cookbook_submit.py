"""An env.toml in the Nemotron cookbook's format (with `extends`) drives real submits to the test cluster:
`nemotron gpt pretrain --batch <profile>` returns at once, `python -m nemotron.train cluster=<profile>`
submits the same way, and `--run <profile>` waits and returns the job's status (a failing one here).
The three are started together (module fixture) so the jobs run side by side.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from slurm_support import REPO, SUBMITTED

pytestmark = pytest.mark.slow

SECRET = "hf_cookbook_test_secret_0123456789"
ENV_TOML = f"""\
[wandb]
project = "nemotron"

[base-slurm]
executor = "slurm"
partition = "debug"
time = "00:10:00"

[test-cluster]
extends = "base-slurm"
nodes = 1
ntasks_per_node = 1
gpus_per_node = 1
cpus_per_task = 1
env_vars = {{ NCCL_DEBUG = "WARN", HF_TOKEN = "{SECRET}" }}
startup_commands = ["echo cookbook-startup-line"]
require_cuda = false  # the test cluster's GPUs are fake: the job's environment check asks for no CUDA

[failing]
extends = "test-cluster"
startup_commands = ["echo cookbook-startup-line", "exit 3"]
"""
CONSOLE = Path(sys.executable).with_name("nemotron")
"""The `nemotron` console script of this environment ([project.scripts])."""


def start(cmd: list, env: dict) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)


@pytest.fixture(scope="module")
def submits(slurm_cluster, tmp_path_factory):
    """Start the three command lines together; their (code, stdout, stderr) and run dirs."""
    base = tmp_path_factory.mktemp("cookbook")
    (base / "env.toml").write_text(ENV_TOML)
    env = {
        **{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"},
        "NEMOTRON_ENV_FILE": str(base / "env.toml"),
        "PYTHONUNBUFFERED": "1",
    }
    common = ["tracker=none", "train.steps=2", f"paths.cache_dir={base / 'cache'}"]
    runs = {
        "batch": [str(CONSOLE), "gpt", "pretrain", "--batch", "test-cluster", *common],
        "hydra": [sys.executable, "-m", "nemotron.train", "+recipe=gpt/pretrain", "cluster=test-cluster", *common],
        "run": [sys.executable, "-m", "nemotron.cookbook.cli", "gpt", "pretrain", "-r", "failing", *common],
    }
    procs = {k: start([*cmd, f"hydra.run.dir={base / k}"], env) for k, cmd in runs.items()}
    done = {k: (p.wait(timeout=240), p.stdout.read(), p.stderr.read()) for k, p in procs.items()}
    return {"base": base, **done}


@pytest.mark.parametrize("form", ["batch", "hydra"])
def test_profile_submits_and_the_job_completes(submits, form, wait_for_job):
    code, out, err = submits[form]
    assert code == 0, out + err
    job_id = SUBMITTED.search(out).group(1)
    assert wait_for_job(job_id, timeout_s=120) == ("COMPLETED", "0:0")
    run_dir = submits["base"] / form
    script = (run_dir / "job.sbatch").read_text()
    assert "#SBATCH --partition=debug" in script and "#SBATCH --time=10" in script
    assert "echo cookbook-startup-line" in script and "export NCCL_DEBUG=WARN" in script
    assert SECRET not in script + out + err  # the token travels in the 0600 secrets file only
    assert "cookbook-startup-line" in (run_dir / "train.log").read_text()
    leaked = [
        p for p in run_dir.rglob("*") if p.is_file() and p.name != "secrets.env" and SECRET.encode() in p.read_bytes()
    ]
    assert not leaked and SECRET in (run_dir / "secrets.env").read_text()


def test_run_waits_and_returns_the_jobs_status(submits):
    code, out, err = submits["run"]
    assert "# = python -m nemotron.train +recipe=gpt/pretrain cluster=failing cluster.wait=true" in err
    found = re.search(r"Slurm job (\d+): (\w+)", out)
    assert found and found.group(2) == "FAILED", out + err
    assert code != 0 and "cookbook-startup-line" in out  # the log was streamed while waiting
