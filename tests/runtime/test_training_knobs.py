"""Training knobs reach Megatron-Core: activation recomputation and the WSD LR schedule."""

from __future__ import annotations

import json

import pytest
from megatron.core import tensor_parallel

from nemotron.runtime.stages import pretrain
from runtime_support import run_config, tiny_data_dir  # noqa: F401 - fixtures


@pytest.fixture
def checkpoint_calls(monkeypatch):
    """Counts calls of Megatron's recompute entry point (tensor_parallel.checkpoint)."""
    calls = []
    original = tensor_parallel.checkpoint

    def counting(function, distribute_saved_activations, *args):
        calls.append(function)
        return original(function, distribute_saved_activations, *args)

    monkeypatch.setattr(tensor_parallel, "checkpoint", counting)
    return calls


@pytest.mark.parametrize("recompute", ["full", "selective"])
def test_recompute_gives_the_same_losses_as_none(run_config, checkpoint_calls, recompute):
    no_checkpoints = "checkpoint.save_at_end=false"  # two runs in one run dir: no resuming
    baseline = pretrain.run(run_config("gpt/pretrain", "train.steps=3", no_checkpoints)).losses
    assert not checkpoint_calls

    losses = pretrain.run(run_config("gpt/pretrain", "train.steps=3", no_checkpoints,
                                     f"train.recompute={recompute}")).losses

    assert checkpoint_calls, f"train.recompute={recompute} recomputed nothing"
    assert losses == pytest.approx(baseline, abs=1e-6)


def test_wsd_holds_the_peak_then_decays_over_wsd_decay_steps(run_config, tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    cfg = run_config("gpt/pretrain", "train.steps=10", "optim.warmup_steps=2",
                     "optim.decay_style=WSD", "optim.wsd_decay_steps=3", "optim.lr=0.002",
                     "optim.min_lr=0.0002", "tracker=jsonl", f"tracker.path={metrics}")
    pretrain.run(cfg)

    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    lrs = [r["lr"] for r in records if "lr" in r]
    assert lrs[:2] == pytest.approx([0.001, 0.002])  # warmup
    assert lrs[2:7] == pytest.approx([0.002] * 5)  # stable
    assert lrs[7:] == pytest.approx([0.0014, 0.0008, 0.0002])  # linear decay over the last 3
