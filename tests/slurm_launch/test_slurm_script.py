"""The batch script from a composed config, without a cluster: shape, env, secrets, containers, launch."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nemotron.config.validate import ConfigError
from nemotron.launchers import slurm, snapshot

BASE = ["+recipe=gpt/pretrain", "cluster=slurm_test", "tracker=none"]


def plan(compose, *overrides):
    cfg = compose([*BASE, *overrides])
    return cfg, slurm.plan_slurm(cfg, cwd=Path("/repo"))


def srun_of(script: str) -> str:
    """The line that starts the ranks (the last srun: the environment check's step comes first)."""
    return [line for line in script.splitlines() if line.startswith("srun ")][-1]


def check_of(script: str) -> str:
    """The environment check's srun step (launchers/env_check.py)."""
    return next(line for line in script.splitlines() if line.startswith("srun ") and "env_check.py" in line)


def test_script_asks_for_nodes_ranks_and_gpus_and_starts_one_task_per_rank(compose):
    _, p = plan(compose, "resources.nodes=2", "resources.gpus_per_node=4", "train.global_batch_size=32")
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --partition=debug",
        "#SBATCH --chdir=/repo",
        f"#SBATCH --output={p.log_path}",
    ):
        assert line in p.script.splitlines()
    assert "LOCAL_WORLD_SIZE=4" in p.script and "export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK" in p.script
    srun = srun_of(p.script)  # submitit's srun line: its runner on every rank, under our rank env
    assert "--kill-on-bad-exit=1 bash -c" in srun and srun.endswith(
        f"-m submitit.core._submit {p.run_dir / 'submitit'}"
    )


def test_secret_env_goes_to_a_file_not_the_script(compose):
    _, p = plan(compose, "+cluster.env.HF_TOKEN=hf_abcdefgh12345", "+cluster.env.NCCL_DEBUG=INFO")
    assert "hf_abcdefgh12345" not in p.script and "export NCCL_DEBUG=INFO" in p.script
    assert 'source "$RUN_DIR"/secrets.env' in p.script and p.secrets == {"HF_TOKEN": "hf_abcdefgh12345"}
    slurm.write_files(p)
    assert p.secrets_path.stat().st_mode & 0o777 == 0o600


def test_container_image_adds_pyxis_flags_and_uses_the_image_python(compose):
    _, p = plan(
        compose,
        "cluster.pyxis=true",
        "cluster.container_image=nvcr.io/nvidia/pytorch:25.09-py3",
        "cluster.container_mounts=[/lustre:/lustre]",
    )
    srun = srun_of(p.script)
    assert "--container-image=nvcr.io/nvidia/pytorch:25.09-py3 --container-mounts=/lustre:/lustre" in srun
    assert "--container-workdir=/repo " in srun  # the submit directory, as the job's --chdir
    assert "rank python " in srun


def test_environment_check_runs_first_in_the_ranks_image_with_their_python(compose):
    image = "nvcr.io#nvidia/pytorch:25.09-py3"
    cfg, p = plan(compose, "cluster.pyxis=true", f"cluster.container_image='{image}'", "cluster.require_cuda=true")
    lines = p.script.splitlines()
    check, ranks = check_of(p.script), srun_of(p.script)
    assert lines.index(check) < lines.index(ranks) and lines.index(check) > lines.index("set -eo pipefail")
    code = Path(cfg.run_dir) / "code"
    assert check.startswith(f"srun --nodes=1 --ntasks=1 '--container-image={image}' --container-workdir=/repo python ")
    assert f"python {code}/nemotron/launchers/env_check.py --snapshot {code} --where 'image {image}'" in check
    assert check.endswith("--gpus 1")  # GPUs asked for and CUDA required: torch must see them
    _, fake = plan(compose, "tracker=mlflow")  # slurm_test's GPUs are fake (require_cuda=false)
    assert "--gpus" not in check_of(fake.script) and check_of(fake.script).endswith("--where python --need=mlflow")
    _, off = plan(compose, "cluster.env_check=false")
    assert "env_check" not in off.script


def test_cluster_python_runs_the_check_the_ranks_and_the_recipe(compose):
    _, p = plan(compose, "cluster.python=/envs/job/bin/python")
    assert " /envs/job/bin/python /" in check_of(p.script)
    assert "rank /envs/job/bin/python -u -m submitit.core._submit" in srun_of(p.script)
    assert p.member.task().argv[0] == "/envs/job/bin/python"


def test_dgx_runs_the_built_image_checked_first_and_a_missing_squash_file_is_refused(compose, tmp_path, monkeypatch):
    dgx = ["+recipe=gpt/pretrain", "cluster=dgx", "tracker=none"]
    monkeypatch.delenv("NEMOTRON_IMAGE", raising=False)
    cfg = compose(dgx)
    assert cfg.cluster.container_image == "/shared/images/nemotron.sqsh"  # not the recipe's stock NGC image
    assert "no such squash file (build docker/Dockerfile" in slurm.check_image_file(cfg)
    image = tmp_path / "nemotron_abc.sqsh"
    image.write_bytes(b"hsqs")
    monkeypatch.setenv("NEMOTRON_IMAGE", str(image))
    cfg = compose([*dgx, "cluster.container_mounts=[/lustre:/lustre]"])  # (the default needs Hydra's cwd)
    assert cfg.cluster.container_image == str(image) and slurm.check_image_file(cfg) is None
    check = check_of(slurm.plan_slurm(cfg, cwd=Path("/repo")).script)
    assert f"--container-image={image}" in check and " python " in check
    assert f"--where 'image {image}'" in check and f"--gpus {cfg.resources.gpus_per_node}" in check


def test_ray_launch_is_refused_on_slurm(compose):
    cfg = compose([*BASE, "recipe.launch=ray"])
    with pytest.raises(ConfigError, match="recipe.launch=ray is not supported"):
        slurm.plan_slurm(cfg)


def test_partition_checks_are_skipped_when_sinfo_does_not_answer(compose, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("SLURM_CONF", raising=False)
    slurm.preflight(compose([*BASE, "cluster.partition=anything"]))


def test_job_asks_for_the_signal_and_requeues_itself_when_the_run_left_the_preempted_marker(compose):
    _, p = plan(compose, "cluster.signal_delay_s=90", "cluster.max_requeues=2")
    lines = p.script.splitlines()
    assert "#SBATCH --signal=USR2@90" in lines and "#SBATCH --requeue" in lines
    # requeue is submitit's checkpoint protocol, bounded by max_num_timeout = cluster.max_requeues
    task = p.member.task()
    assert p.job.executor.max_num_timeout == 2 and task.max_requeues == 2 and callable(task.checkpoint)
    assert task.run_dir == str(p.run_dir)  # what submitit pickles: paths and the command, no config
    _, never = plan(compose, "cluster.max_requeues=0")
    assert "#SBATCH --requeue" not in never.script.splitlines()


def test_job_runs_the_code_snapshot_unless_switched_off(compose):
    cfg, p = plan(compose)
    code = Path(cfg.run_dir) / "code"
    assert p.code_dir == code
    assert f"export PYTHONPATH={code}${{PYTHONPATH:+:$PYTHONPATH}}" in p.script
    assert p.member.task().argv[1:] == [f"{code}/recipes/gpt/pretrain/train.py", "--config", f"{p.run_dir}/config.yaml"]
    cfg, live = plan(compose, "cluster.snapshot=false")
    assert live.code_dir is None and "PYTHONPATH" not in live.script
    assert live.member.task().argv[1] == cfg.recipe.script


def test_refuse_policy_names_the_uncommitted_files_before_anything_is_submitted(compose, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "nemotron").mkdir(parents=True)
    (repo / "nemotron" / "__init__.py").write_text("")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "init"]):
        subprocess.run([*git, *args], check=True)
    monkeypatch.setattr(snapshot, "code_root", lambda: repo)
    cfg = compose([*BASE, "cluster.uncommitted=refuse"])
    assert slurm.check_uncommitted(cfg) is None  # clean
    (repo / "nemotron" / "__init__.py").write_text("x = 1\n")
    assert "1 uncommitted file(s)" in slurm.check_uncommitted(
        cfg
    ) and "nemotron/__init__.py" in slurm.check_uncommitted(cfg)
    with pytest.raises(ConfigError, match="cluster.uncommitted=refuse"):
        slurm.preflight(cfg)
    assert slurm.check_uncommitted(compose([*BASE, "cluster.uncommitted=ship"])) is None
