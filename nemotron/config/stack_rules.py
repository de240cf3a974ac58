"""Compose-time rules of the target stack: a layout or feature the job's environment cannot run is
refused here, in one line, before anything is submitted (never inside a job that holds nodes).

The stack and what the runtime builds on it are decided in one place (nemotron/common/stack.py);
these rules ask it, so compose, the memory estimate and the runtime agree.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from nemotron.common import stack as stacks
from nemotron.common.stages import is_packed


def _local_because(cfg: Any, stack: stacks.Stack) -> str:
    """Why the run builds the local layer spec, for an error line."""
    if str(getattr(cfg.model.transformer_impl, "value", cfg.model.transformer_impl)) == "local":
        return "model.transformer_impl=local"
    if not stack.transformer_engine:
        return f"{stack.source} has no Transformer Engine"
    return f"{stack.source} has no mamba_ssm, which the TE spec of a model with Mamba layers needs"


def transformer_engine_when_demanded(cfg: Any) -> Optional[str]:
    impl = str(getattr(cfg.model.transformer_impl, "value", cfg.model.transformer_impl))
    stack = stacks.target_stack(cfg)
    if impl == "transformer_engine" and not stacks.te_spec_possible(cfg, stack):
        return (
            f"model.transformer_impl=transformer_engine but {_local_because(cfg, stack)}; use auto or local, "
            "or an image that has it (docker/Dockerfile; cluster.transformer_engine=true)"
        )
    return None


def sequence_parallel_needs_te(cfg: Any) -> Optional[str]:
    p, stack = cfg.parallel, stacks.target_stack(cfg)
    if p.sequence_parallel and p.tensor_model_parallel_size > 1 and stacks.layer_spec(cfg, stack) == stacks.LOCAL:
        return (
            "parallel.sequence_parallel=true needs the Transformer Engine layer spec (Megatron's torch norm "
            f"does not support it), but {_local_because(cfg, stack)}; use sequence_parallel=false and no MoE at TP>1"
        )
    return None


def sequence_parallel_splits_the_sequence(cfg: Any) -> Optional[str]:
    p, seq = cfg.parallel, cfg.model.seq_length
    tp = p.tensor_model_parallel_size
    if p.sequence_parallel and tp > 1 and seq % tp:
        return (
            f"model.seq_length={seq}: sequence parallelism splits every sequence (a thd pack: every row) over "
            f"parallel.tensor_model_parallel_size={tp} ranks; use a multiple of {tp}"
        )
    return None


def context_parallel_needs_te(cfg: Any) -> Optional[str]:
    p, stack = cfg.parallel, stacks.target_stack(cfg)
    if p.context_parallel_size > 1 and stacks.layer_spec(cfg, stack) == stacks.LOCAL:
        return (
            f"parallel.context_parallel_size={p.context_parallel_size} needs Transformer Engine's attention "
            f"(Megatron's local attention has no context parallelism), but {_local_because(cfg, stack)}; use 1"
        )
    return None


def moe_tensor_parallel_needs_sp(cfg: Any) -> Optional[str]:
    p = cfg.parallel
    if cfg.model.num_moe_experts and p.tensor_model_parallel_size > 1 and not p.sequence_parallel:
        return (
            f"MoE (model.num_moe_experts) with parallel.tensor_model_parallel_size={p.tensor_model_parallel_size} "
            "needs parallel.sequence_parallel=true (Megatron-Core's MoE layer refuses to train without it)"
        )
    return None


def mamba_context_parallel(cfg: Any) -> Optional[str]:
    p = cfg.parallel
    if p.context_parallel_size > 1 and stacks.has_mamba_layers(cfg) and stacks.mamba_mixer(cfg) == "torch":
        return (
            f"parallel.context_parallel_size={p.context_parallel_size} with Mamba layers needs mamba_ssm's mixer; "
            "this run uses the pure-PyTorch one (no context parallelism); use 1"
        )
    return None


def packed_context_parallel(cfg: Any) -> Optional[str]:
    p = cfg.parallel
    if is_packed(cfg) and p.context_parallel_size > 1:
        return (
            f"parallel.context_parallel_size={p.context_parallel_size}: packed SFT/DPO samples are not split "
            "over context-parallel ranks in this version; use 1 (and tensor parallelism for long samples)"
        )
    return None


def packed_thd_pipeline_micro_batch(cfg: Any) -> Optional[str]:
    p, t = cfg.parallel, cfg.train
    if is_packed(cfg) and stacks.packed_layout(cfg) == "thd" and p.pipeline_model_parallel_size > 1:
        if t.micro_batch_size > 1:
            return (
                f"train.micro_batch_size={t.micro_batch_size}: packed samples on the Transformer Engine spec "
                "travel between pipeline stages as one row (thd); use train.micro_batch_size=1 with "
                f"parallel.pipeline_model_parallel_size={p.pipeline_model_parallel_size}"
            )
    return None


def lora_sequence_parallel(cfg: Any) -> Optional[str]:
    """LoRA wraps the local and the TE linear layers alike, but not sequence-parallel ones."""
    peft, p = (cfg.get("peft") if hasattr(cfg, "get") else None), cfg.parallel
    if peft is not None and peft.method == "lora" and p.sequence_parallel and p.tensor_model_parallel_size > 1:
        return (
            "peft=lora with parallel.sequence_parallel=true: adapters on sequence-parallel layers are not "
            "wired yet; use parallel.sequence_parallel=false (and no MoE at TP>1)"
        )
    return None


STACK_RULES: List[Callable[[Any], Optional[str]]] = [
    transformer_engine_when_demanded,
    sequence_parallel_needs_te,
    sequence_parallel_splits_the_sequence,
    context_parallel_needs_te,
    moe_tensor_parallel_needs_sp,
    mamba_context_parallel,
    packed_context_parallel,
    packed_thd_pipeline_micro_batch,
    lora_sequence_parallel,
]
"""Every rule of the target stack, in the order errors are reported."""
