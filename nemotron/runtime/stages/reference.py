"""The frozen reference model DPO and GRPO compare the policy with, built in one place."""

from __future__ import annotations

from typing import Any, Optional

from nemotron.common.checkpoint_index import Found
from nemotron.runtime.checkpoint import store
from nemotron.runtime.model.build import build_model
from nemotron.runtime.train.progress import say
from nemotron.runtime.train.setup import set_seed


def build_frozen_reference(cfg: Any, vocab_size: int, source: Optional[Found]) -> Any:
    """The policy's architecture with `source`'s weights, or (None) the policy's initial weights,
    rebuilt from `train.seed`; in eval mode, without gradients."""
    set_seed(cfg.train.seed)  # random weights: the policy's initial ones
    reference, _ = build_model(cfg, vocab_size)
    if source is not None:
        store.load_weights(source, cfg, reference, say=False)
        say(f"reference model: {source.path} (step {source.step}), frozen")
    else:
        say("reference model: the policy's initial weights (train.seed), frozen")
    reference.eval()
    for param in reference.parameters():
        param.requires_grad_(False)
    return reference
