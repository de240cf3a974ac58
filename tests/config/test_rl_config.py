"""The rl recipes compose, and their bad input is refused at compose time in one line."""

from __future__ import annotations

import pytest

from nemotron.config.validate import ConfigError, validate


@pytest.mark.parametrize("recipe", ["gpt/rl", "nano3/rl"])
def test_rl_recipes_compose_and_start_from_the_newest_sft_checkpoint(compose, recipe):
    cfg = compose([f"+recipe={recipe}", "tracker=none"])
    validate(cfg)  # no sft checkpoint under outputs: RL may start from random weights
    assert cfg.checkpoint.pretrained == f"newest:{recipe.split('/')[0]}/sft" and cfg.rl.group_size >= 2


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("rl.rewards=[{_target_: no_such.fn}]", "rl.rewards[0]._target_=no_such.fn: does not import"),
        (
            "rl.rewards=[{_target_: nemotron.runtime.rewards.exact_match, pattern: x}]",
            "rl.rewards[0]._target_=nemotron.runtime.rewards.exact_match: wrong signature",
        ),
        ("rl.group_size=1", "rl.group_size=1: out of range, must be >= 2"),
        ("rl.kl_beta=0", "rl.kl_beta=0.0: out of range, must be > 0"),
        ("rl.temperature=-0.5", "rl.temperature=-0.5: out of range, must be >= 0"),
        ("checkpoint.pretrained=/no/such/dir", "checkpoint.pretrained=/no/such/dir holds no complete checkpoint"),
    ],
)
def test_bad_rl_input_is_one_line_at_compose(compose, override, line):
    with pytest.raises(ConfigError) as err:
        validate(compose(["+recipe=gpt/rl", "tracker=none", override]))
    (found,) = str(err.value).splitlines()
    assert found.startswith(line)


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["resources.procs_per_node=2", "parallel.pipeline_model_parallel_size=2"],
            "parallel.pipeline_model_parallel_size=2: RL generation runs on tensor x data parallel layouts only",
        ),
        (
            # on a stack with Transformer Engine (context parallelism needs it: nemotron/config/stack_rules.py)
            ["cluster=dgx", "resources.gpus_per_node=2", "parallel.context_parallel_size=2"],
            "parallel.context_parallel_size=2: RL generation runs on tensor x data parallel layouts only",
        ),
        (["train.eval_interval=5"], "train.eval_interval=5: RL has no validation loss; use 0"),
    ],
)
def test_rl_layouts_the_sampler_cannot_run_are_refused_at_compose(compose, overrides, line):
    with pytest.raises(ConfigError) as err:
        validate(compose(["+recipe=gpt/rl", "tracker=none", *overrides]))
    (found,) = str(err.value).splitlines()
    assert found.startswith(line)
    validate(compose(["+recipe=gpt/pretrain", "tracker=none", *overrides]))  # a pretraining run may
