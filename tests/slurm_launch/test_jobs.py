"""`python -m nemotron.jobs` on the real test cluster: list shows recorded runs with their sacct state,
follow streams a log until the job ends (exit 0 iff COMPLETED), cancel scancels, unknown ids exit 2.

The short and the long job are submitted together (module fixture) so that they run side by side.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

COMMON = ("+recipe=gpt/pretrain", "cluster=slurm_test", "tracker=none")
SUBMITTED = re.compile(r"submitted gpt/pretrain as Slurm job (\d+)")
HEAVY = ("torch", "megatron", "mlflow", "hydra", "omegaconf")


def run(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env={**env, "PYTHONUNBUFFERED": "1"}, cwd=REPO, timeout=timeout)


def submit(root: Path, name: str, *overrides: str) -> str:
    """Own cache dir per job: two jobs generating the same tiny data at once race in runtime/prep.py."""
    out = run("nemotron.train", *COMMON, f"paths.output_root={root}", f"paths.cache_dir={root / 'cache' / name}",
              f"hydra.run.dir={root / 'gpt/pretrain' / name}", *overrides)
    assert out.returncode == 0, out.stdout + out.stderr
    return SUBMITTED.search(out.stdout).group(1)


@pytest.fixture(scope="module")
def submitted(slurm_cluster, tmp_path_factory):
    """A 3-step job and a long one under one output root."""
    root = tmp_path_factory.mktemp("jobs")
    return {"root": root, "short": submit(root, "short", "train.steps=3"),
            "long": submit(root, "long", "train.steps=100000")}


def listed(root: Path) -> dict:
    out = run("nemotron.jobs", "list", "--root", str(root))
    assert out.returncode == 0, out.stderr
    return {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:]}


def test_follow_prints_the_log_and_exits_0_once_completed(submitted):
    out = run("nemotron.jobs", "follow", submitted["short"], "--root", str(submitted["root"]), "--poll", "0.5")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr
    assert "done | 3/3 steps" in out.stdout
    assert f"Slurm job {submitted['short']}: COMPLETED" in out.stderr


def test_list_shows_recorded_jobs_newest_first_with_sacct_state(submitted, wait_for_job):
    wait_for_job(submitted["short"], timeout_s=90)
    rows = listed(submitted["root"])
    assert list(rows)[:2] == [submitted["long"], submitted["short"]]
    job_id, recipe, state, _elapsed, run_dir = rows[submitted["short"]]
    assert (recipe, state) == ("gpt/pretrain", "COMPLETED")
    assert (Path(run_dir) / "train.log").exists() and Path(run_dir).is_relative_to(submitted["root"])


def test_cancel_by_run_dir_makes_the_job_cancelled(submitted, wait_for_job):
    run_dir = listed(submitted["root"])[submitted["long"]][4]
    out = run("nemotron.jobs", "cancel", run_dir)
    assert out.returncode == 0, out.stderr
    assert f"cancelled Slurm job {submitted['long']}" in out.stdout
    assert wait_for_job(submitted["long"], timeout_s=30)[0].startswith("CANCELLED")
    assert listed(submitted["root"])[submitted["long"]][2] == "CANCELLED"


@pytest.mark.parametrize("target", ["999999", "/nonexistent/run"])
def test_unknown_job_or_run_dir_is_one_line_and_exit_2(slurm_cluster, tmp_path, target):
    for command in ("follow", "cancel"):
        out = run("nemotron.jobs", command, target, "--root", str(tmp_path))
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and target in out.stderr, out.stderr


def test_jobs_module_imports_no_heavy_packages():
    code = f"import sys, nemotron.jobs; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
