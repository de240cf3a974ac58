"""The Transformer Engine compat module of LoRA: every use of Megatron-Core's TE layers
(megatron/core/extensions/transformer_engine.py) and of TE's own module attributes lives here.

Nothing here imports transformer_engine: a layer is recognised by the names of the classes it
derives from (Megatron-Core's TE wrappers, whose module path names transformer_engine), so CPU runs
and the layer spec without TE never touch it. Tested against Megatron-Core 0.16's wrappers:
- TEColumnParallelLinear / TERowParallelLinear return (out, bias or None), and hold their local
  weight as `weight` ((out/TP, in) and (out, in/TP), as the local layers);
- TELayerNormColumnParallelLinear is TE's LayerNormLinear (norm and linear in one kernel): its
  `weight` is the linear's alone (the norm's are `layer_norm_weight`/`layer_norm_bias`). Its
  TE attributes `return_layernorm_output(_gathered)` make it also return the norm's output, as
  (out, bias, ln_out) with a separate bias, else ((out, ln_out), None): what its adapter must see.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch

KINDS = {
    "TEColumnParallelLinear": "column",
    "TELayerNormColumnParallelLinear": "column",
    "TERowParallelLinear": "row",
}
"""Megatron-Core's TE layers LoRA wraps, and how each splits over tensor-parallel ranks."""

FUSED_NORM = "TELayerNormColumnParallelLinear"
NORM_FLAGS = ("return_layernorm_output", "return_layernorm_output_gathered")


def _te_classes(module: Any) -> list:
    return [c for c in type(module).__mro__ if "transformer_engine" in c.__module__]


def is_te(module: Any) -> bool:
    """Whether `module` is a Transformer Engine layer (of Megatron-Core's wrappers or TE's own)."""
    return bool(_te_classes(module))


def kind(module: Any) -> Optional[str]:
    """`column` or `row` for a TE layer LoRA wraps; None for any other module."""
    for cls in _te_classes(module):
        if cls.__name__ in KINDS:
            return KINDS[cls.__name__]
    return None


def fused_norm(module: Any) -> bool:
    """Whether `module` is TE's fused layernorm + linear (its adapter reads the norm's output)."""
    return any(cls.__name__ == FUSED_NORM for cls in _te_classes(module))


def expose_norm_output(module: Any) -> Tuple[bool, ...]:
    """Make the fused layer also return its (whole, sequence-gathered) norm output; the flags it had."""
    missing = [flag for flag in NORM_FLAGS if not hasattr(module, flag)]
    if missing:
        raise ValueError(
            f"{type(module).__name__} has no {missing[0]}: this Transformer Engine cannot return its "
            "layernorm output, which LoRA adapts; set model.transformer_impl=local"
        )
    saved = tuple(bool(getattr(module, flag)) for flag in NORM_FLAGS)
    for flag in NORM_FLAGS:
        setattr(module, flag, True)
    return saved


def restore_norm_output(module: Any, saved: Tuple[bool, ...]) -> None:
    """Give the fused layer back the flags `expose_norm_output` changed (after a merge)."""
    for flag, value in zip(NORM_FLAGS, saved, strict=True):
        setattr(module, flag, value)


def split_fused_output(result: Any) -> Tuple[torch.Tensor, Any, torch.Tensor]:
    """(out, bias, norm output) of a fused layer that returns its norm output (either layout)."""
    if len(result) == 3:
        return result[0], result[1], result[2]
    (out, ln_out), bias = result
    return out, bias, ln_out
