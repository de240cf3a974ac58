"""Golden-loss tests: the tiny recipes train in-process on CPU and reproduce pinned per-step losses.

A change to the model, data, optimizer or loop that moves any loss by more than 1e-4 fails here.
When the change is intended, regenerate the values and paste them below:

    NEMOTRON_UPDATE_GOLDEN=1 .venv/bin/pytest tests/runtime/test_golden_loss.py -s -q
"""

from __future__ import annotations

import json
import os

import pytest
import torch.distributed as dist

from nemotron.runtime.stages import pretrain
from runtime_support import run_config, tiny_data_dir  # noqa: F401 - fixtures

UPDATE = os.environ.get("NEMOTRON_UPDATE_GOLDEN") == "1"

GOLDEN_GPT_TINY = [6.240699, 6.161936, 6.004036, 5.826369, 5.665324, 5.502517, 5.404001, 5.327606]
GOLDEN_NANO3_TINY = [6.257282, 6.105195, 5.927155, 5.739717, 5.552695, 5.364226, 5.255059, 5.170928]


def _check_golden(name: str, losses: list[float], golden: list[float]) -> None:
    if UPDATE:
        print(f"\n{name} = {[round(x, 6) for x in losses]}")
        return
    assert losses == pytest.approx(golden, abs=1e-4), f"{name}: got {losses}"


def test_gpt_tiny_reproduces_golden_losses_and_tracks_metrics(run_config, tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    cfg = run_config("gpt/pretrain", "train.steps=8", "train.log_interval=1", "train.eval_interval=4",
                     "train.eval_iters=1", "tracker=jsonl", f"tracker.path={metrics}")
    result = pretrain.run(cfg)

    _check_golden("GOLDEN_GPT_TINY", result.losses, GOLDEN_GPT_TINY)
    assert result.steps == 8 and result.tokens_per_s > 0
    assert result.losses[-1] < result.losses[0] - 0.5
    assert sorted(result.val_losses) == [4, 8] and result.val_losses[8] < result.val_losses[4]
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9))
    assert {"loss", "lr", "grad_norm", "tokens_per_s"} <= set(records[0])
    assert records[-1]["status"] == "FINISHED"


def test_nano3_tiny_hybrid_moe_trains_and_reproduces_golden_losses(run_config):
    result = pretrain.run(run_config("nano3/pretrain", "train.steps=8"))

    _check_golden("GOLDEN_NANO3_TINY", result.losses, GOLDEN_NANO3_TINY)
    assert result.losses[-1] < result.losses[0] - 0.5


def test_hybrid_pattern_with_every_layer_kind_trains(run_config):
    cfg = run_config("nano3/pretrain", "train.steps=8", "model.hybrid_layer_pattern=M*-E")
    result = pretrain.run(cfg)

    assert result.losses[-1] < result.losses[0] - 0.5, result.losses


def test_indivisible_batch_fails_clearly_and_leaves_the_process_reusable(run_config, tmp_path, capsys):
    metrics = tmp_path / "metrics.jsonl"
    cfg = run_config("gpt/pretrain", "train.global_batch_size=6", "tracker=jsonl",
                     f"tracker.path={metrics}")
    with pytest.raises(ValueError, match="global_batch_size=6 is not divisible by"):
        pretrain.run(cfg)

    assert "FAILED during setup" in capsys.readouterr().out
    assert json.loads(metrics.read_text().splitlines()[-1])["status"] == "FAILED"
    assert pretrain.run(run_config("gpt/pretrain", "train.steps=1")).steps == 1


def test_layout_larger_than_the_world_fails_with_a_summary_line(run_config, capsys):
    cfg = run_config("gpt/pretrain", "parallel.tensor_model_parallel_size=2")
    with pytest.raises(ValueError, match="world size 1 is not divisible by tensor x pipeline"):
        pretrain.run(cfg)

    assert "FAILED during setup: ValueError" in capsys.readouterr().out
    assert not dist.is_initialized()
