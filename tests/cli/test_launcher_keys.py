"""`hydra.launcher.*` keys of hydra-submitit-launcher (stock names) reach submitit's script; the
cluster option fills in what is not set; resources decide nodes and tasks; bad keys are one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemotron.config.hydra_compat import INSTALLED, check_versions
from nemotron.config.schema_launcher import STOCK_KEYS
from nemotron.config.validate import ConfigError
from nemotron.launchers import slurm
from nemotron.launchers.launcher_conf import explicit

BASE = ["+recipe=gpt/pretrain", "cluster=slurm_test", "tracker=none"]
STOCK = {
    "partition",
    "account",
    "qos",
    "timeout_min",
    "nodes",
    "tasks_per_node",
    "gpus_per_node",
    "cpus_per_task",
    "mem_gb",
    "signal_delay_s",
    "max_num_timeout",
    "array_parallelism",
    "setup",
    "srun_args",
    "additional_parameters",
}


def script(compose, *overrides):
    cfg = compose([*BASE, *overrides])
    return slurm.plan_slurm(cfg, cwd=Path("/repo"), launcher=explicit(cfg.hydra.launcher))


def test_every_stock_key_exists():
    assert STOCK <= set(STOCK_KEYS)


def test_cluster_option_fills_in_what_is_not_set(compose):
    lines = script(compose).script.splitlines()
    assert "#SBATCH --partition=debug" in lines and "#SBATCH --time=10" in lines  # conf/cluster/slurm_test.yaml
    assert "#SBATCH --cpus-per-task=1" in lines and "#SBATCH --signal=USR2@120" in lines


def test_set_keys_win_with_their_stock_meaning(compose):
    p = script(
        compose,
        "hydra.launcher.timeout_min=7",
        "hydra.launcher.partition=other",
        "hydra.launcher.mem_gb=3",
        "hydra.launcher.cpus_per_task=2",
        "hydra.launcher.signal_delay_s=30",
        "hydra.launcher.max_num_timeout=5",
        "+hydra.launcher.additional_parameters.mail-type=END",
        "hydra.launcher.setup=['echo hi']",
        "hydra.launcher.srun_args=['--cpu-bind=none']",
        "hydra.launcher.tasks_per_node=1",
    )
    lines = p.script.splitlines()
    for line in (
        "#SBATCH --time=7",
        "#SBATCH --partition=other",
        "#SBATCH --mem=3GB",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --signal=USR2@30",
        "#SBATCH --mail-type=END",
        "echo hi",
    ):
        assert line in lines, line
    assert "--kill-on-bad-exit=1 --cpu-bind=none bash -c" in p.script
    assert p.job.executor.max_num_timeout == 5 and p.member.task().max_requeues == 5
    assert p.member.record["partition"] == "other"


def test_resources_decide_nodes_and_tasks(compose):
    with pytest.raises(ConfigError, match=r"hydra.launcher.nodes=2 but the run's resources.nodes decides 1"):
        script(compose, "hydra.launcher.nodes=2")
    with pytest.raises(ConfigError, match=r"hydra.launcher.tasks_per_node=4 but the run's resources"):
        script(compose, "hydra.launcher.tasks_per_node=4")


@pytest.mark.parametrize(
    "override, message",
    [
        ("hydra.launcher.partitio=x", "hydra.launcher.partitio: unknown key (did you mean partition?)"),
        ("hydra.launcher.bogus=1", "hydra.launcher.bogus: unknown key; valid keys in 'hydra.launcher': account,"),
        ("cluster.bogus=1", "cluster.bogus: unknown key; valid keys in 'cluster': name,"),
    ],
)
def test_unknown_key_is_one_line_naming_the_valid_ones(cli, override, message):
    result = cli(*BASE, "dry_run=true", override)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_private_api_versions_are_checked(monkeypatch):
    check_versions()  # the installed ones pass
    monkeypatch.setitem(INSTALLED, "hydra-core", "1.4.0")
    with pytest.raises(ImportError, match=r"checked against hydra-core>=1.3.2,<1.4; 1.4.0 is installed"):
        check_versions()


def test_submitit_folder_is_fixed(compose):
    with pytest.raises(ConfigError, match=r"hydra.launcher.submitit_folder=/x: fixed here"):
        script(compose, "hydra.launcher.submitit_folder=/x")
