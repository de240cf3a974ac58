"""A job runs in the environment its cluster option names, built by the documented setup (docs/containers.md),
not in the submitting machine's virtualenv; an environment that lacks a package fails the job in one line.

- fresh: `cluster.setup` builds a new virtualenv in the run dir from the code snapshot's list of what a job
  needs (`env_check.py --requirements`; pip, offline, from a wheelhouse) and `cluster.python` points the
  environment check, the ranks and the recipe at it: the tiny recipe COMPLETES.
- empty: `cluster.python` is a bare virtualenv: the environment check's one line in train.log, FAILED with
  its exit status, and no rank started.
The wheelhouse is made once per requirements list (`pip wheel`, from the package index) under
`.cache/nemotron/`; building the fresh environment from it takes ~30 s on the 2-core test machine.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from slurm_support import REPO, SUBMITTED, cli

from nemotron.launchers import env_check

pytestmark = pytest.mark.slow

COMMON = ("+recipe=gpt/pretrain", "cluster=slurm_test", "tracker=none", "train.steps=3")
BASE_PYTHON = Path(getattr(sys, "_base_executable", sys.executable))
"""The interpreter the submitting venv was made from: the fresh environments start from it, not from the venv."""
CHECK = REPO / "launchers" / "env_check.py"


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """Wheels of what a job needs, made once per list (the documented setup's offline form)."""
    needs = "\n".join(env_check.requirements(str(REPO), [])) + "\n"
    house = REPO / ".cache" / "nemotron" / f"wheelhouse-{hashlib.sha256(needs.encode()).hexdigest()[:12]}"
    if not (house / ".complete").exists():
        (house / "requirements.txt").parent.mkdir(parents=True, exist_ok=True)
        (house / "requirements.txt").write_text(needs)
        made = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "-r", str(house / "requirements.txt"), "-w", str(house)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert made.returncode == 0, made.stderr[-2000:]
        (house / ".complete").touch()
    return house


def fresh_env_overrides(wheelhouse: Path) -> list:
    """The documented setup (docs/containers.md), offline: a new venv from the snapshot's list of needs."""
    code, env = "${run_dir}/code", "${run_dir}/venv"
    needs = f"{BASE_PYTHON} {code}/nemotron/launchers/env_check.py --snapshot {code} --requirements"
    setup = [
        f"{BASE_PYTHON} -m venv {env}",
        f"{env}/bin/pip install -q --no-compile --no-index --find-links {wheelhouse} -r <({needs})",
    ]
    return [f"cluster.setup=[{','.join(repr(line) for line in setup)}]", f"cluster.python={env}/bin/python"]


@pytest.fixture(scope="module")
def jobs(slurm_cluster, tmp_path_factory, wheelhouse):
    """Submit the job in a fresh environment and the one in an empty environment, side by side."""
    base = tmp_path_factory.mktemp("job_env")
    cache = f"paths.cache_dir={base / 'cache'}"
    fresh_dir, empty_dir = base / "fresh", base / "empty"
    empty_dir.mkdir()
    subprocess.run([str(BASE_PYTHON), "-m", "venv", "--without-pip", str(empty_dir / "env")], check=True)
    empty = cli(*COMMON, cache, f"hydra.run.dir={empty_dir}", f"cluster.python={empty_dir / 'env' / 'bin' / 'python'}")
    fresh = cli(*COMMON, cache, f"hydra.run.dir={fresh_dir}", *fresh_env_overrides(wheelhouse))
    return {"fresh": fresh, "fresh_dir": fresh_dir, "empty": empty, "empty_dir": empty_dir}


def test_job_runs_in_a_fresh_environment_its_setup_built(jobs, wait_for_job):
    fresh, run_dir = jobs["fresh"], jobs["fresh_dir"]
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    job_id = SUBMITTED.search(fresh.stdout).group(1)
    state = wait_for_job(job_id, timeout_s=300)
    log = (run_dir / "train.log").read_text()
    assert state == ("COMPLETED", "0:0"), log[-3000:]
    python = run_dir / "venv" / "bin" / "python"
    assert f"nemotron: environment ok in python {python}: submitit 1.5" in log
    assert "done | 3/3 steps" in log
    assert f"rank {python} -u -m submitit.core._submit" in (run_dir / "job.sbatch").read_text()
    # only what the documented setup installed: nothing of the submitting venv (mlflow, the nemotron install)
    probe = "import importlib.util as u; print([m for m in ('mlflow', 'nemotron') if u.find_spec(m)])"
    assert subprocess.run([str(python), "-I", "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"


def test_environment_without_the_packages_fails_the_job_in_one_line_before_the_ranks(jobs, wait_for_job):
    empty, run_dir = jobs["empty"], jobs["empty_dir"]
    assert empty.returncode == 0, empty.stdout + empty.stderr
    job_id = SUBMITTED.search(empty.stdout).group(1)
    assert wait_for_job(job_id, timeout_s=120) == ("FAILED", f"{env_check.EXIT_MISSING}:0")
    log = (run_dir / "train.log").read_text()
    python = run_dir / "env" / "bin" / "python"
    lines = [line for line in log.splitlines() if line.startswith("nemotron: python")]
    assert lines == [
        f"nemotron: python {python} lacks submitit, hydra-core, omegaconf, PyYAML, torch, megatron-core, numpy, "
        "psutil, tokenizers (install the project's dependencies into it; see docs/containers.md)"
    ], log
    assert not list((run_dir / "submitit").glob("*_0_log.out"))  # no rank started
