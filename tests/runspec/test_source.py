"""The runspec ConfigSource: recipes selectable as +recipe=<name>, and the documented precedence.

runspec defaults < the recipe's own config < config groups < command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nemotron.config.validate import problems
from nemotron.runspec.source import RecipeConfigError

RECIPE = "+recipe=fixture/precedence"


def test_runspec_fields_become_recipe_defaults(fixture_recipes, compose):
    cfg = compose([RECIPE])
    assert cfg.recipe.name == "fixture/precedence"
    assert cfg.recipe.script == str(fixture_recipes / "prec" / "train.py")
    assert cfg.recipe.image == "example.com/runspec-image:1"
    assert cfg.recipe.nodes == 2
    assert dict(cfg.recipe.env) == {"FROM_RUNSPEC": "runspec", "SHARED": "runspec"}


def test_recipe_config_beats_runspec(fixture_recipes, compose):
    cfg = compose([RECIPE])
    assert cfg.recipe.gpus_per_node == 2  # runspec says 4, the recipe's config/default.yaml says 2
    assert cfg.train.steps == 7  # schema default is 30
    assert cfg.hydra.runtime.choices["model"] == "nano3_tiny"  # chosen by the recipe's defaults list


def test_cluster_group_beats_recipe(fixture_recipes, compose):
    cfg = compose([RECIPE])
    assert cfg.resources.nodes == 1  # runspec asks for 2; cluster=local has one node
    assert cfg.resources.gpus_per_node == min(2, cfg.cluster.gpus_per_node)


def test_command_line_beats_everything(fixture_recipes, compose):
    cfg = compose([RECIPE, "model=gpt_tiny", "train.steps=9", "recipe.env.SHARED=cli"])
    assert cfg.hydra.runtime.choices["model"] == "gpt_tiny"
    assert cfg.model.arch.name == "gpt"
    assert cfg.train.steps == 9
    assert cfg.recipe.env.SHARED == "cli"
    assert problems(cfg) == []


def test_recipe_config_may_not_set_group_values(monkeypatch, compose):
    TESTS = Path(__file__).resolve().parents[1]

    monkeypatch.setenv("NEMOTRON_RECIPE_PATH", str(TESTS / "fixtures" / "bad_recipes"))
    with pytest.raises(RecipeConfigError) as err:
        compose(["+recipe=fixture/sets-group-values"])
    assert "grp/config/default.yaml: key 'model' is owned by the 'model' group" in str(err.value)


def test_recipes_listed_as_a_group(fixture_recipes, compose):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from nemotron.common.paths import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        repo = GlobalHydra.instance().config_loader().get_sources()
        names = [s for s in repo if s.scheme() == "runspec"]
        assert names, "runspec source not on the search path"
        assert "fixture" in names[0].list("recipe", None)
        assert names[0].list("recipe/fixture", None) == ["cmd", "precedence", "secrets"]
