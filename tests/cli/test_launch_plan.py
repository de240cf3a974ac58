"""The local launch plan: the exact command line and environment a run gets."""

from __future__ import annotations

import sys

import pytest

from nemotron.config.validate import ConfigError
from nemotron.launchers.local import plan_local

RECIPE = "+recipe=fixture/precedence"


def test_one_rank_runs_the_script_directly(fixture_recipes, compose, tmp_path):
    cfg = compose([RECIPE])
    plan = plan_local(cfg, tmp_path / "config.yaml")
    assert plan.argv == [sys.executable, cfg.recipe.script, "--config", str(tmp_path / "config.yaml")]


def test_cluster_env_overrides_runspec_env(fixture_recipes, compose, tmp_path):
    cfg = compose([RECIPE, "+cluster.env.SHARED=cluster"])
    env = plan_local(cfg, tmp_path / "c.yaml").env
    assert env["FROM_RUNSPEC"] == "runspec" and env["SHARED"] == "cluster"


def test_cmd_template_fills_script_and_config_and_keeps_shell_variables(fixture_recipes, compose, tmp_path):
    cfg = compose(["+recipe=fixture/cmd"])
    plan = plan_local(cfg, tmp_path / "c.yaml")
    assert plan.argv == [sys.executable, "-u", cfg.recipe.script, "--cfg", str(tmp_path / "c.yaml"), "--tag", "${USER}"]
    assert plan.env["DATA_HOME"] == "${HOME}/data"


def test_several_ranks_use_torch_elastic_launcher(fixture_recipes, compose, tmp_path):
    cfg = compose([RECIPE, "resources.procs_per_node=2", "train.global_batch_size=8"])
    argv = plan_local(cfg, tmp_path / "c.yaml").argv
    assert argv[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=2" in argv and argv[argv.index("--no-python") + 1] == sys.executable


@pytest.mark.parametrize("launch, ranks, message", [
    ("direct", 2, "recipe.launch=direct starts one process but 2 ranks per node"),
    ("ray", 1, "recipe.launch=ray is not supported on cluster=local"),
])
def test_launch_modes_the_local_cluster_cannot_honour(fixture_recipes, compose, tmp_path, launch, ranks, message):
    cfg = compose([RECIPE, f"recipe.launch={launch}", f"resources.procs_per_node={ranks}"])
    with pytest.raises(ConfigError, match=message):
        plan_local(cfg, tmp_path / "c.yaml")


def test_describe_is_a_reproducible_shell_snippet(fixture_recipes, compose, tmp_path):
    plan = plan_local(compose([RECIPE]), tmp_path / "c d.yaml")
    text = plan.describe()
    assert "export FROM_RUNSPEC=runspec" in text
    assert text.splitlines()[-1].endswith("--config '" + str(tmp_path / "c d.yaml") + "'")
