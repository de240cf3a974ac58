"""The activation estimate is within 25% of the peak PyTorch's allocator records.

One forward and backward of a tiny model per case, in-process (world of one, CPU, fp32), under
torch.profiler's memory accounting: the peak of allocated bytes above what was allocated before
the forward (parameters, inputs) is what autograd kept plus recompute's working set. Cases cover
attention, dense and MoE MLPs, Mamba-2 and every recompute mode the layer kinds support, and one
GRPO training micro batch (micro batch x rl.group_size rows through rl_step's own loss).
"""

from __future__ import annotations

import pytest
import torch
from runtime_support import resolved_run_config
from torch.profiler import ProfilerActivity, profile

from nemotron.memory.estimate import stage_activations
from nemotron.memory.layout import layout_from_config
from nemotron.runtime import cpu_compat
from nemotron.runtime.model import build as model
from nemotron.runtime.stages.rl import step as rl_step
from nemotron.runtime.train import distributed

TOLERANCE = 0.25
CASES = {
    "gpt": ["+recipe=gpt/pretrain"],
    "gpt_selective": ["+recipe=gpt/pretrain", "train.recompute=selective"],
    "gpt_full": ["+recipe=gpt/pretrain", "train.recompute=full"],
    "gpt_mbs2_seq256_gelu": [
        "+recipe=gpt/pretrain",
        "train.micro_batch_size=2",
        "model.seq_length=256",
        "model.activation=gelu",
        "model.num_layers=3",
    ],
    "gpt_moe": ["+recipe=gpt/pretrain", "model.num_moe_experts=4", "model.moe_ffn_hidden_size=96"],
    "nano3": ["+recipe=nano3/pretrain"],
    "nano3_selective_8_layers": ["+recipe=nano3/pretrain", "train.recompute=selective", "model.num_layers=8"],
}


@pytest.fixture(scope="module")
def config_for(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("memory_activations")

    def _make(overrides):
        return resolved_run_config([*overrides, "tracker=none", "train.num_threads=1"], run_dir)

    distributed.init(_make(["+recipe=gpt/pretrain"]))
    yield _make
    distributed.teardown()


RL_CASES = {
    "gpt_rl_group_4": ["+recipe=gpt/rl", "train.micro_batch_size=1", "rl.group_size=4"],
    "nano3_rl_group_4": ["+recipe=nano3/rl", "train.micro_batch_size=1", "rl.group_size=4"],
}
VOCAB = 512


def _tiny_model(cfg):
    cpu_compat.install()
    cpu_compat.seed_model_parallel(1234)
    return model.build_model(cfg, VOCAB)[0]


def measured_peak(cfg) -> int:
    """Peak bytes allocated during one forward + backward above the level before it."""
    net = _tiny_model(cfg)
    b, s = cfg.train.micro_batch_size, cfg.model.seq_length
    tokens = torch.randint(0, 500, (b, s))
    positions = torch.arange(s).expand(b, s)
    mask = torch.ones(s, s, dtype=torch.bool).triu(1).expand(b, 1, s, s)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        net(tokens, positions, mask, labels=tokens).sum().backward()
    return _peak(prof)


def measured_grpo_peak(cfg) -> int:
    """The same for one GRPO training micro batch: its rows through rl_step's logits and loss."""
    net = _tiny_model(cfg)
    rows, s = cfg.train.micro_batch_size * cfg.rl.group_size, cfg.model.seq_length
    batch = {
        "tokens": torch.randint(0, 500, (rows, s)),
        "labels": torch.randint(0, 500, (rows, s)),
        "position_ids": torch.arange(s).expand(rows, s),
        "loss_mask": torch.ones(rows, s),
        "advantages": torch.randn(rows),
        "ref_logp": torch.randn(rows, s),
    }
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        loss, _, _ = rl_step.loss_func(batch, cfg.rl, VOCAB, rl_step.policy_logits(net, batch))
        loss.backward()
    return _peak(prof)


def _peak(prof) -> int:
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start)
    level = peak = 0
    for event in events:
        level += event.self_cpu_memory_usage
        peak = max(peak, level)
    return peak


@pytest.mark.parametrize("case", CASES)
def test_activation_estimate_is_within_25_percent_of_the_measured_peak(case, config_for):
    cfg = config_for(CASES[case])
    estimated = stage_activations(layout_from_config(cfg), 0)
    measured = measured_peak(cfg)
    assert abs(estimated - measured) <= TOLERANCE * measured, (case, estimated, measured)


@pytest.mark.parametrize("case", RL_CASES)
def test_grpo_micro_batch_estimate_is_within_25_percent_of_the_measured_peak(case, config_for):
    cfg = config_for(RL_CASES[case])
    estimated = stage_activations(layout_from_config(cfg), 0)
    measured = measured_grpo_peak(cfg)
    assert abs(estimated - measured) <= TOLERANCE * measured, (case, estimated, measured)
