"""The batch script from a composed config, without a cluster: shape, env, secrets, containers, launch."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemotron import slurm
from nemotron.config.validate import ConfigError

BASE = ["+recipe=gpt/pretrain", "cluster=slurm_test", "tracker=none"]


def plan(compose, *overrides):
    cfg = compose([*BASE, *overrides])
    return cfg, slurm.plan_slurm(cfg, Path(cfg.run_dir) / "config.yaml", cwd=Path("/repo"))


def test_script_asks_for_nodes_ranks_and_gpus_and_starts_one_task_per_rank(compose):
    _, p = plan(compose, "resources.nodes=2", "resources.gpus_per_node=4", "train.global_batch_size=32")
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --partition=debug", "#SBATCH --chdir=/repo", f"#SBATCH --output={p.log_path}"):
        assert line in p.script.splitlines()
    assert "LOCAL_WORLD_SIZE=4" in p.script and "export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK" in p.script
    assert p.script.splitlines()[-1].startswith("srun --kill-on-bad-exit=1 bash -c")


def test_secret_env_goes_to_a_file_not_the_script(compose):
    _, p = plan(compose, "+cluster.env.HF_TOKEN=hf_abcdefgh12345", "+cluster.env.NCCL_DEBUG=INFO")
    assert "hf_abcdefgh12345" not in p.script and "export NCCL_DEBUG=INFO" in p.script
    assert f"source {p.secrets_path}" in p.script and p.secrets == {"HF_TOKEN": "hf_abcdefgh12345"}
    slurm.write_files(p)
    assert p.secrets_path.stat().st_mode & 0o777 == 0o600


def test_container_image_adds_pyxis_flags_and_uses_the_image_python(compose):
    _, p = plan(compose, "cluster.pyxis=true", "cluster.container_image=nvcr.io/nvidia/pytorch:25.09-py3",
                "cluster.container_mounts=[/lustre:/lustre]")
    srun = p.script.splitlines()[-1]
    assert "--container-image=nvcr.io/nvidia/pytorch:25.09-py3 --container-mounts=/lustre:/lustre" in srun
    assert "rank python " in srun


def test_ray_launch_is_refused_on_slurm(compose):
    cfg = compose([*BASE, "recipe.launch=ray"])
    with pytest.raises(ConfigError, match="recipe.launch=ray is not supported"):
        slurm.plan_slurm(cfg, Path(cfg.run_dir) / "config.yaml")


def test_partition_checks_are_skipped_when_sinfo_does_not_answer(compose, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("SLURM_CONF", raising=False)
    slurm.preflight(compose([*BASE, "cluster.partition=anything"]))
