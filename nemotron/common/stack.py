"""The software stack a run's ranks will have, and what the runtime builds on it: one answer for
compose (refuse what the target cannot run, before anything is submitted), the memory estimate (count
attention and Mamba as the run will build them) and the runtime (build exactly that).

The stack is what the job's environment holds: `cluster.transformer_engine` and `cluster.mamba_ssm`
(true for `cluster=dgx`, whose image is built from docker/Dockerfile), or, where those are null, what
this machine's python has installed (the job runs this python on the host). A run without GPUs
never uses either: Transformer Engine and mamba_ssm's kernels need CUDA.

What is built on it:
- the layer spec (`layer_spec`): `te` (Transformer Engine's fused layers, flash/cuDNN attention,
  grouped-GEMM MoE) or `local` (Megatron-Core's own modules, attention through a full s x s softmax).
  `model.transformer_impl=auto` takes TE wherever the stack has it (and, for a hybrid model with
  Mamba layers, mamba_ssm too: upstream's TE hybrid spec hard-wires mamba_ssm's mixer); `local`
  forces the local spec; `transformer_engine` demands TE (refused at compose where the stack lacks it);
- the Mamba-2 mixer (`mamba_mixer`): mamba_ssm's `MambaMixer` (fused Triton/CUDA scan) where the stack
  has mamba_ssm, except that packed samples on the local spec take the pure-PyTorch mixer (the only one
  that resets state at boundaries inside a [seq, batch] row); else the pure-PyTorch mixer;
- the packed layout of SFT and DPO (`packed_layout`): `thd` on the TE spec (all rows laid end to end
  as one sequence, `PackedSeqParams(qkv_format="thd")`, TE's varlen attention and mamba_ssm's
  `seq_idx`), `sbhd` on the local spec (a block-diagonal attention mask and per-sample Mamba runs).

Torch-free: `importlib.util.find_spec` says whether a package is installed without importing it (the
runtime then imports it, and warns in one line when an installed package fails to: see
nemotron/runtime/model/stack_check.py).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Optional

from nemotron.common.hybrid_pattern import hybrid_pattern
from nemotron.common.stages import is_packed

TE = "te"
LOCAL = "local"


@dataclass(frozen=True)
class Stack:
    """What the job's environment has, and where that answer came from."""

    transformer_engine: bool
    mamba_ssm: bool
    source: str
    """For error lines: `cluster=dgx`'s image, or this machine's python, or `CPU`."""


def installed(module: str) -> bool:
    """Whether `module` is installed in this python (found, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _value(node: Any, key: str, default: Any = None) -> Any:
    getter = getattr(node, "get", None)
    value = getter(key, default) if getter else getattr(node, key, default)
    return getattr(value, "value", value)


def target_stack(cfg: Any) -> Stack:
    """The stack the run's ranks will have (see the module docstring)."""
    cluster = _value(cfg, "cluster") or {}
    name = _value(cluster, "name", "local")
    if int(_value(_value(cfg, "resources") or {}, "gpus_per_node", 0) or 0) == 0:
        return Stack(False, False, "a CPU run")
    te, mamba = _value(cluster, "transformer_engine"), _value(cluster, "mamba_ssm")
    declared = te is not None or mamba is not None
    return Stack(
        bool(installed("transformer_engine") if te is None else te),
        bool(installed("mamba_ssm") if mamba is None else mamba),
        f"cluster={name}'s environment (cluster.transformer_engine/mamba_ssm)"
        if declared
        else f"this machine's python (cluster={name} runs it)",
    )


def has_mamba_layers(cfg: Any) -> bool:
    """Whether the model has Mamba (`M`) layers."""
    model = _value(cfg, "model")
    return _value(model, "arch") == "hybrid" and "M" in hybrid_pattern(model)


def te_spec_possible(cfg: Any, stack: Stack) -> bool:
    """Whether the stack can build the TE spec for this model (hybrid with M layers: needs mamba_ssm)."""
    return stack.transformer_engine and (stack.mamba_ssm or not has_mamba_layers(cfg))


def layer_spec(cfg: Any, stack: Optional[Stack] = None) -> str:
    """`te` or `local`: the layer spec the run builds (model.transformer_impl against the stack)."""
    stack = stack or target_stack(cfg)
    impl = _value(_value(cfg, "model"), "transformer_impl", "auto") or "auto"
    if impl == "local":
        return LOCAL
    return TE if te_spec_possible(cfg, stack) else LOCAL


def packed_layout(cfg: Any, stack: Optional[Stack] = None) -> str:
    """`thd` (TE spec) or `sbhd` (local spec): how packed SFT/DPO samples reach the model."""
    return "thd" if layer_spec(cfg, stack) == TE else "sbhd"


def mamba_mixer(cfg: Any, stack: Optional[Stack] = None) -> str:
    """`mamba_ssm` or `torch`: the Mamba-2 mixer the run builds (see the module docstring)."""
    stack = stack or target_stack(cfg)
    if not stack.mamba_ssm:
        return "torch"
    if layer_spec(cfg, stack) == LOCAL and _packed(cfg):
        return "torch"
    return "mamba_ssm"


def _packed(cfg: Any) -> bool:
    recipe = _value(cfg, "recipe")
    return recipe is not None and _value(recipe, "name") is not None and is_packed(cfg)
