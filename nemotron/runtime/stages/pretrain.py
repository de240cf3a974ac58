"""Pretraining: the shared loop's defaults (GPT datasets, every token in the loss, weights from the
seed). `run(cfg)` is what the pretrain recipes call."""

from __future__ import annotations

from typing import Any

from nemotron.runtime.train import loop
from nemotron.runtime.train.contract import Stage, TrainResult


class PretrainStage(Stage):
    """The pretraining stage: the contract's defaults."""

    name = "pretrain"


def run(cfg: Any) -> TrainResult:
    """Pretrain `cfg.train.steps` steps; see `nemotron.runtime.train.loop.run`."""
    return loop.run(cfg, PretrainStage())
