"""The pre-flight memory estimate of an eval run: the weights alone in their dtype (no gradients,
optimizer or master copies), and the larger of scoring and generating one `eval.batch_size` batch."""

from __future__ import annotations

import pytest

from nemotron.memory import estimate_config, fit_problem, table
from nemotron.memory.estimate import GIB
from nemotron.memory.layout import layout_from_config
from nemotron.memory.params import stage_params

EVAL_8B = ["+recipe=gpt/eval", "model=gpt_8b", "cluster=dgx", "checkpoint.pretrained=null", "resources.gpus_per_node=1"]


def test_an_eval_holds_bf16_weights_and_no_training_state(compose):
    cfg = compose([*EVAL_8B, "eval.batch_size=1"])
    est = estimate_config(cfg)
    params = stage_params(layout_from_config(cfg), 0).count
    assert est.parts["weights"] == params * 2  # bf16, no fp32 master copy, no DDP buffer padding
    assert est.parts["gradients"] == est.parts["optimizer"] == est.parts["reference"] == 0
    assert set(est.phases) == {"scoring", "rollout"}
    assert fit_problem(cfg) is None  # an 8B model evaluates on one 80 GB GPU ...
    train = compose(["+recipe=gpt/pretrain", "model=gpt_8b", "cluster=dgx", "train.micro_batch_size=1"])
    assert fit_problem(train) is not None  # ... where it cannot train
    assert "eval batch 1" in table(cfg) and "GPU, bf16 weights" in table(cfg)


def test_the_batch_of_requests_scales_both_working_sets(compose):
    one = estimate_config(compose([*EVAL_8B, "eval.batch_size=1"]))
    four = estimate_config(compose([*EVAL_8B, "eval.batch_size=4"]))
    assert four.phases["rollout"] == pytest.approx(4 * one.phases["rollout"])  # KV cache per sequence
    assert four.phases["scoring"] > 3 * one.phases["scoring"]  # logits and their fp32 log-softmax per row
    assert four.parts["weights"] == one.parts["weights"]


def test_an_eval_that_does_not_fit_is_told_the_eval_knob(compose):
    problem = fit_problem(compose([*EVAL_8B, "eval.batch_size=16"]))
    assert problem is not None and "eval.batch_size=" in problem and "train.micro_batch_size" not in problem
    assert estimate_config(compose([*EVAL_8B, "eval.batch_size=16"])).total / GIB > 76
