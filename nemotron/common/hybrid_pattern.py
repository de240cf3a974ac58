"""The per-layer pattern of a hybrid (Mamba/attention/MLP/MoE) model, shared by the config checks and
the model builder. Standard library only: the runtime imports it without loading Hydra."""

from __future__ import annotations

from typing import Any

HYBRID_SYMBOLS = "M*-E"
"""Layer symbols of a hybrid pattern: Mamba, attention, MLP, MoE."""


def hybrid_pattern(model: Any) -> str:
    """The per-layer pattern: `hybrid_layer_pattern` tiled to `num_layers` when that is a multiple of it.

    `model=nano3_tiny model.num_layers=8` turns "M*ME" into "M*MEM*ME", so a tiny proxy scales in depth
    with one override; a length that is not a multiple is left for `hybrid_pattern_fits` to refuse.
    """
    unit = model.hybrid_layer_pattern or ""
    if unit and model.num_layers % len(unit) == 0:
        return unit * (model.num_layers // len(unit))
    return unit
