"""Bad input on the command line gives short `error:` lines naming the problem, never a traceback."""

from __future__ import annotations

import pytest
from pathlib import Path

from nemotron.common.paths import CONF_DIR, RECIPES_DIR
from nemotron.runspec.parser import discover

TESTS = Path(__file__).resolve().parents[1]
MODELS = ", ".join(sorted(p.stem for p in CONF_DIR.glob("model/*.yaml")))

CASES = {
    "unknown option lists choices": (["model=nope"], f"model=nope: no such option; valid choices: {MODELS}"),
    "typo in key suggests the key": (["model.num_layrs=2"], "model.num_layrs: unknown key (did you mean num_layers?)"),
    "appended unknown key refused": (["+model.num_layrs=2"], "model.num_layrs: unknown key (did you mean num_layers?)"),
    "wrong type": (["train.steps=1.5"], "train.steps: Value '1.5' of type 'float' could not be converted to Integer"),
    "bad enum value": (["model.arch=transformer"], "model.arch: Invalid value 'transformer', expected one of [gpt, hybrid]"),
    "heads do not divide hidden": (
        ["model.hidden_size=100", "model.num_attention_heads=3"],
        "model.num_attention_heads=3 must divide model.hidden_size=100",
    ),
    "impossible gpu request": (["resources.gpus_per_node=16"], "resources.gpus_per_node=16 exceeds cluster.gpus_per_node="),
    "override syntax": (["train.steps=[1"], "override 'train.steps=[1'"),
}


def assert_short_error(result, expected: str, max_lines: int = 2) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= max_lines, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in result.stderr, result.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_override_gives_one_clear_error(cli, case):
    overrides, expected = CASES[case]
    assert_short_error(cli("+recipe=gpt/pretrain", *overrides, "dry_run=true"), expected)


def test_recipe_typo_suggests_closest_name(cli):
    assert_short_error(cli("+recipe=nano3/pretrian"), "+recipe=nano3/pretrian: no such recipe (did you mean nano3/pretrain?)")


def test_no_recipe_lists_available(cli):
    names = ", ".join(sorted(discover([RECIPES_DIR])))
    assert "gpt/pretrain" in names and "nano3/pretrain" in names
    assert_short_error(cli("dry_run=true"), f"no recipe selected: add +recipe=<name>; available: {names}")


def test_bad_launch_in_runspec_names_file_and_line(cli):
    root = TESTS / "fixtures" / "bad_launch"
    result = cli("+recipe=fixture/bad-launch", env={"NEMOTRON_RECIPE_PATH": str(root)})
    assert_short_error(result, f"{root / 'magic' / 'train.py'}:7: tool.runspec.run.launch:", max_lines=1)
    assert "slurm-magic" in result.stderr and "torchrun" in result.stderr


def test_word_for_node_count_names_file_and_line(cli):
    root = TESTS / "fixtures" / "bad_nodes"
    result = cli("+recipe=fixture/bad-nodes", env={"NEMOTRON_RECIPE_PATH": str(root)})
    assert_short_error(result, f"{root / 'two' / 'train.py'}:7: tool.runspec.resources.nodes:", max_lines=1)


def test_full_error_env_keeps_the_traceback(cli):
    result = cli("+recipe=gpt/pretrain", "model=nope", env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr


SEEN_BEFORE_START = {
    "missing load dir": (["checkpoint.load_dir=/nonexistent/run"], "checkpoint.load_dir=/nonexistent/run: no such directory"),
    "missing blend file": (["data=prepared", "data.blend_file=/nonexistent/blend.json"],
                           "data.blend_file: /nonexistent/blend.json not found"),
    "malformed split": (["data.split='98,a'"], "data.split='98,a' must be up to three non-negative numbers"),
    "vocab smaller than the tokenizer": (["model.vocab_size=100"], "is smaller than the tokenizer's 512 tokens"),
    "pipeline does not split the model": (
        ["parallel.pipeline_model_parallel_size=3", "resources.procs_per_node=3", "train.global_batch_size=9",
         "train.micro_batch_size=3"],
        "parallel.pipeline_model_parallel_size=3 must divide the model's 2 layers",
    ),
}


@pytest.mark.parametrize("case", sorted(SEEN_BEFORE_START))
def test_mistakes_the_training_process_used_to_find_are_caught_before_it_starts(cli, tmp_path, case):
    overrides, expected = SEEN_BEFORE_START[case]
    result = cli("+recipe=gpt/pretrain", "tracker=none", *overrides)
    assert_short_error(result, expected)
    assert not list((tmp_path / "outputs").rglob("train.log"))  # nothing started


def test_unwritable_output_root_is_one_line(cli, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = cli("+recipe=gpt/pretrain", f"paths.output_root={blocker}/outputs")
    assert_short_error(result, f"cannot create the run directory {blocker}/outputs")
