"""What one step and one run report: `StepRecord` (the loop's one metrics channel) and `TrainResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class StepRecord:
    """One optimizer step's figures (the same on every rank)."""

    loss: float
    """Training loss, averaged over data-parallel ranks and micro-batches."""
    lr: float
    """Learning rate the step used."""
    grad_norm: float
    """Gradient norm before clipping (nan when the optimizer reports none)."""
    tokens: Optional[int] = None
    """Tokens trained in the step; None: train.global_batch_size x model.seq_length."""
    extra: Dict[str, float] = field(default_factory=dict)
    """The stage's own figures (DPO's rewards, GRPO's), logged beside the loss."""


@dataclass
class TrainResult:
    """What a finished run reports back (identical on every rank)."""

    losses: List[float]
    """Training loss of each step, averaged over data-parallel ranks and micro-batches."""
    tokens_per_s: float
    """Global training throughput, steps after the first (evaluation and saving excluded)."""
    steps: int
    """Optimizer steps run."""
    val_losses: Dict[int, float] = field(default_factory=dict)
    """Validation loss by step (when train.eval_interval > 0)."""
    wall_s: float = 0.0
    """Seconds from the first step to the last."""
    start_step: int = 0
    """Steps already done when this run began (resumed from a checkpoint); losses[0] is step
    start_step + 1."""
    stage_metrics: List[Dict[str, float]] = field(default_factory=list)
    """The stage's own figures of each step (`StepRecord.extra`), beside `losses` (empty for
    stages without any)."""
