"""Parameter counts of a model config: total, embeddings, routed experts and active per token.

`meta_parameter_counts(cfg, vocab)` has Megatron-Core build the model `cfg` describes on the meta
device (no memory, no initialisation), so the counts are those of the real modules, for full-size
configs too (`model=nano3`: 31.6B in about a second). `count_parameters(model, model_cfg)` counts
any built model. Active = total less the routed experts a token is not sent to (top-k of N).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from nemotron.runtime import cpu_compat
from nemotron.runtime.model.build import build_unwrapped_model, transformer_config


@dataclass(frozen=True)
class ParamCounts:
    """Parameters of one rank's model (the whole model at world size 1)."""

    total: int
    """Every parameter (a tied output layer counted once)."""
    embedding: int
    """Input embedding lookup (word and learned position embeddings)."""
    output_layer: int
    """Untied output projection; 0 when tied to the input embedding."""
    routed_experts: int
    """All routed experts of all MoE layers (shared experts are not routed)."""
    active: int
    """Used per token: total less the routed experts a token is not sent to (top-k of N)."""

    @property
    def active_without_embeddings(self) -> int:
        """Active parameters less the input embedding and the output layer."""
        return self.active - self.embedding - self.output_layer


def count_parameters(model: Any, model_cfg: Any) -> ParamCounts:
    """Count `model`'s parameters by kind (works on a meta-device model)."""
    total = embedding = output = routed = 0
    for name, param in model.named_parameters():
        n = param.numel()
        total += n
        if "word_embeddings." in name or "position_embeddings." in name:
            embedding += n
        elif name.endswith("output_layer.weight"):
            output += n
        elif ".experts." in name and ".shared_experts." not in name:
            routed += n
    experts = model_cfg.num_moe_experts or 1
    idle = routed * (experts - min(model_cfg.moe_router_topk, experts)) // experts
    return ParamCounts(total, embedding, output, routed, total - idle)


def meta_parameter_counts(cfg: Any, tokenizer_vocab_size: int) -> ParamCounts:
    """ParamCounts of `cfg`'s model built on the meta device: no memory, no initialisation.

    Needs Megatron's parallel state and RNG tracker, as `build_model` does (the Mamba mixer forks
    the tracker while it builds); about a second for nano3's 31.6B parameters.
    """
    cpu_compat.install()
    config = transformer_config(cfg)
    config.perform_initialization = False
    config.use_cpu_initialization = True  # weights are then created without a device: on meta
    with torch.device("meta"):
        model = build_unwrapped_model(cfg, config, tokenizer_vocab_size)
    return count_parameters(model, cfg.model)
