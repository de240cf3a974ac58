"""Every shipped config option and every recipe composes and passes validation.

Parametrized over the files themselves: a new option or recipe is covered without touching this test.
"""

from __future__ import annotations

import pytest

from nemotron.config.batch_fit import fit_batch_to_ranks
from nemotron.config.validate import problems
from nemotron.common.paths import CONF_DIR, RECIPES_DIR
from nemotron.runspec.parser import discover

RUN_GROUPS = {"cluster", "data", "model", "tracker"}
"""The groups of a run's config; conf/pipeline/ holds pipelines (`python -m nemotron.pipe`, tests/pipe)."""
OPTIONS = sorted(f"{p.parent.name}={p.stem}" for p in CONF_DIR.glob("*/*.yaml") if p.parent.name in RUN_GROUPS)
RECIPES = sorted(discover([RECIPES_DIR]))
EXTRA: dict = {}
"""Options that need companions to form a valid run on this machine (none today: batch sizes fit the ranks)."""
NOT_ON_A_FRESH_CLONE = {
    # options that read what another run writes: they compose, and validation names the missing file
    "data=prepared": "data.blend_file: ",
}


def test_something_is_shipped():
    # a new group: add it (peft's options apply to fine-tuning recipes: test_peft_options_compose below)
    assert {p.name for p in CONF_DIR.iterdir() if p.is_dir()} == RUN_GROUPS | {"pipeline", "peft"}
    assert {"model=gpt_tiny", "data=tiny", "cluster=local", "tracker=jsonl"} <= set(OPTIONS)
    assert "nano3/pretrain" in RECIPES and "gpt/pretrain" in RECIPES


@pytest.mark.parametrize("option", sorted(f"peft={p.stem}" for p in CONF_DIR.glob("peft/*.yaml")))
def test_peft_options_compose_with_a_fine_tuning_recipe(compose, option, tmp_path):
    cfg = compose(["+recipe=gpt/sft", option, "checkpoint.pretrained=null", f"paths.output_root={tmp_path}"])
    assert problems(cfg) == []


@pytest.mark.parametrize("option", OPTIONS)
def test_option_composes_and_validates(compose, option):
    cfg = compose(["+recipe=gpt/pretrain", option, *EXTRA.get(option, [])])
    fit_batch_to_ranks(cfg)
    group, name = option.split("=")
    assert cfg.hydra.runtime.choices[group] == name
    assert cfg.hydra.mode is None  # nemotron.config.hydra_compat.skip_mode_compose relies on it
    expected = NOT_ON_A_FRESH_CLONE.get(option)
    found = problems(cfg)
    assert found == [] if expected is None else len(found) == 1 and found[0].startswith(expected)


NEEDS_A_PRETRAINED_RUN = {"gpt/sft": "checkpoint.pretrained=newest:gpt/pretrain: no complete checkpoint",
                          "nano3/sft": "checkpoint.pretrained=newest:nano3/pretrain: no complete checkpoint",
                          "gpt/dpo": "checkpoint.pretrained=newest:gpt/sft|gpt/pretrain: no complete checkpoint",
                          "nano3/dpo": "checkpoint.pretrained=newest:nano3/sft|nano3/pretrain: no complete checkpoint",
                          "gpt/eval": "checkpoint.pretrained=newest:gpt/rl|gpt/sft|gpt/pretrain: no complete checkpoint",
                          "nano3/eval": "checkpoint.pretrained=newest:nano3/rl|nano3/sft|nano3/pretrain: no complete "
                                        "checkpoint"}
"""Recipes that start from another recipe's checkpoint: with no such run, validation says how to make one."""
NEEDS_A_TOKENIZER = {
    recipe: "data.tokenizer_path is null: name the tokenizer the model was trained with"
    for recipe in ("data/prep_sft", "data/prep_dpo")
}
"""Chat preps tokenize with the model's own tokenizer: refused at compose until one is named."""


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_composes_and_validates(compose, recipe, tmp_path):
    cfg = compose([f"+recipe={recipe}", f"paths.output_root={tmp_path / 'empty'}"])
    assert cfg.recipe.name == recipe
    assert cfg.hydra.mode is None  # nemotron.config.hydra_compat.skip_mode_compose relies on it
    expected = NEEDS_A_PRETRAINED_RUN.get(recipe) or NEEDS_A_TOKENIZER.get(recipe)
    found = problems(cfg)
    assert found == [] if expected is None else len(found) == 1 and found[0].startswith(expected)
