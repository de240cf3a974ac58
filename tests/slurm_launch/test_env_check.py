"""launchers/env_check.py in this python (no Slurm): the one line for a wrong version, a snapshot PYTHONPATH
did not reach, an image's missing packages; the requirements list the documented setup installs."""

from __future__ import annotations

import shutil
import subprocess
import sys

from slurm_support import REPO

from nemotron.launchers import env_check

CHECK = REPO / "launchers" / "env_check.py"


def run_check(*args: str, pythonpath: str = str(REPO)) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath, "PYTHONSAFEPATH": "1"}
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True, env=env)


def test_this_environment_passes_and_says_what_it_found():
    ok = run_check("--snapshot", str(REPO))
    assert ok.returncode == 0 and ok.stdout.startswith(f"nemotron: environment ok in python {sys.executable}: ")
    assert "megatron-core 0.16" in ok.stdout and ok.stdout.count("\n") == 1


def test_a_version_outside_the_snapshots_range_and_a_missing_package_are_one_line(tmp_path):
    snap = tmp_path / "code"
    shutil.copytree(REPO / "nemotron" / "common", snap / "nemotron" / "common")  # a snapshot's versions.py
    (snap / "nemotron" / "__init__.py").write_text("")
    (snap / "pyproject.toml").write_text('[project]\ndependencies = ["submitit>=9.0", "torch>=2.4"]\n')
    bad = run_check("--snapshot", str(snap), "--where", "image my/img:1", pythonpath=str(snap))
    assert bad.returncode == env_check.EXIT_MISSING, bad.stderr
    assert (
        bad.stdout.startswith("nemotron: image my/img:1 lacks submitit>=9.0 (has 1.5") and bad.stdout.count("\n") == 1
    )
    assert bad.stdout.rstrip().endswith("(build docker/Dockerfile; see docker/README.md)")


def test_a_snapshot_that_is_not_on_the_path_is_named(tmp_path):
    bad = run_check("--snapshot", str(tmp_path), "--where", "image x")
    assert bad.returncode == env_check.EXIT_MISSING
    assert f"nemotron imports from {REPO}, not {tmp_path}: PYTHONPATH did not reach the job" in bad.stdout


def test_requirements_are_the_jobs_needs_with_pyprojects_ranges():
    listed = env_check.requirements(str(REPO), ["mlflow"])
    assert "submitit>=1.5,<1.6" in listed and "megatron-core>=0.16.1,<0.20" in listed and listed[-1] == "mlflow>=3.0"


def test_a_stack_the_cluster_declares_is_checked_in_the_image():
    missing = run_check("--snapshot", str(REPO), "--where", "image my/img:1", "--need=transformer-engine")
    assert missing.returncode == env_check.EXIT_MISSING
    assert missing.stdout.startswith("nemotron: image my/img:1 lacks transformer-engine")


def test_the_job_asks_for_the_stack_its_cluster_declares(compose):
    from nemotron.launchers.script import declared_needs

    dgx = compose(["+recipe=nano3/pretrain", "cluster=dgx", "resources.gpus_per_node=1", "tracker=mlflow"])
    assert declared_needs(dgx) == ["mlflow", "transformer-engine", "mamba-ssm", "causal-conv1d"]
    cpu = compose(["+recipe=nano3/pretrain", "cluster=dgx", "resources.gpus_per_node=0", "tracker=none"])
    assert declared_needs(cpu) == []
