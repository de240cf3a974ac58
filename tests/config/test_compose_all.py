"""Every shipped config option and every recipe composes and passes validation.

Parametrized over the files themselves: a new option or recipe is covered without touching this test.
"""

from __future__ import annotations

import pytest
from blend_support import prepared_blend

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
    "data=corpus": "data.blend_file: ",  # data/prep's full-scale option: where it writes, data=prepared reads
}
NAMES_A_TOKENIZER = {"data=corpus"}
"""Full-scale prep options: the real model's tokenizer is the user's to name ($NEMOTRON_TOKENIZER or the key)."""


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
def test_option_composes_and_validates(compose, option, word_tokenizer):
    named = [f"data.tokenizer_path={word_tokenizer}"] if option in NAMES_A_TOKENIZER else []
    cfg = compose(["+recipe=gpt/pretrain", option, *EXTRA.get(option, []), *named])
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


SHIPPED_CONFIGS = ("default", "tiny")
"""The cookbook's config names: `tiny` (the embedded CPU run, each runspec's default) and `default`
(the full-scale configuration of the real model)."""


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_ships_tiny_as_its_default_and_a_full_scale_default(recipe):
    spec = discover([RECIPES_DIR])[recipe]
    assert spec.config_default == "tiny"
    assert {p.stem for p in spec.config_dir.glob("*.yaml")} >= set(SHIPPED_CONFIGS)


def user_inputs(recipe, tmp_path, tokenizer) -> list:
    """What the user names for a full-scale `default`: prep inputs and the model; for the training recipes
    random weights (no earlier run here) and prepared data under a scratch paths.cache_dir."""
    if recipe.startswith("data/"):
        chats = tmp_path / "in.jsonl"
        chats.write_text('{"messages": [], "prompt": "p", "chosen": "a", "rejected": "b", "text": "t"}\n')
        return ["model=nano3", f"data.sources=[{chats}]", f"data.tokenizer_path={tokenizer}"]
    prepared_blend(tmp_path / "cache", tokenizer)
    rl = [f"rl.prompt_file={tmp_path / 'in.jsonl'}"] if recipe.endswith("/rl") else []
    (tmp_path / "in.jsonl").write_text('{"prompt": "1 + 1 =", "answer": "2"}\n')
    return ["checkpoint.pretrained=null", *rl]


@pytest.mark.parametrize("recipe", RECIPES)
def test_full_scale_default_composes_and_fits_the_dgx_cluster(compose, recipe, tmp_path, word_tokenizer):
    inputs = user_inputs(recipe, tmp_path, word_tokenizer)
    cfg = compose([f"+recipe={recipe}/default", "cluster=dgx", f"paths.output_root={tmp_path / 'out'}",
                   f"paths.cache_dir={tmp_path / 'cache'}", *inputs])
    fit_batch_to_ranks(cfg)
    assert problems(cfg) == []  # the memory pre-flight (preflight.memory=check) included
    if not recipe.startswith("data/"):
        assert cfg.hydra.runtime.choices["model"] in ("nano3", "gpt_8b") and cfg.model.seq_length == 8192
        assert int(cfg.resources.nodes) * int(cfg.resources.gpus_per_node) >= 8


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r.endswith("/rl")])
def test_full_scale_rl_does_not_fall_back_to_the_toy_task(compose, recipe, monkeypatch):
    monkeypatch.delenv("NEMOTRON_RL_PROMPTS", raising=False)
    cfg = compose([f"+recipe={recipe}/default", "cluster=dgx"])
    with pytest.raises(Exception, match="NEMOTRON_RL_PROMPTS"):
        cfg.rl.prompt_file  # noqa: B018 - resolving it is the check
