"""What a GRPO rollout holds on one rank besides the persistent weights, gradients and optimizer state.

Generation (nemotron/runtime/model/generate.py) samples all of this rank's prompts of a step
(train.global_batch_size / DP) rl.group_size times, `Layout.rollout_rows` sequences, through one
Megatron `StaticInferenceContext`. Per sequence it keeps:

* KV cache, per attention layer `*` of the stage: K and V, each [seq, rows, num_query_groups / TP
  (at least 1: with fewer groups than TP ranks each rank keeps one), kv_channels] in the activation
  dtype (Megatron's `Attention._allocate_memory`);
* Mamba-2 state, per `M` layer: the conv window over the conv channels (d_inner + 2 x groups x
  state, / TP) and the SSM state [heads / TP, head_dim, state]. mamba_ssm's MambaMixer (GPU) keeps
  a window of d_conv and both in the weights' dtype; our TorchMamba2Mixer (`mamba2_cache`) keeps
  d_conv - 1 inputs in the activation dtype and the SSM state in fp32.

The cache is counted for model.seq_length per sequence: a prompt plus rl.max_new_tokens never
exceeds it (longer prompts are skipped) and the runtime sizes each batch for its prompt length plus
rl.max_new_tokens, so this is the bound. Not counted: the prefill's one-layer working set and the
last position's logits the sampler reads (rows x vocabulary), both transient.
"""

from __future__ import annotations

from typing import Dict

from nemotron.memory.activations import FP32
from nemotron.memory.layout import Layout
from nemotron.memory.params import CONV_WIDTH, stage_layers


def _stage_parts(x: Layout, stage: int, symbol: str) -> int:
    return sum(layer.count(symbol) for layer in stage_layers(x, stage))


def kv_cache_bytes(x: Layout, stage: int) -> float:
    """K and V of every attention layer on `stage`, for all rollout sequences at model.seq_length."""
    groups = max(1, x.groups // x.tp)
    per_layer = 2 * x.rollout_rows * x.seq * groups * x.kv_channels * x.dtype_bytes
    return float(_stage_parts(x, stage, "*") * per_layer)


def mamba_state_bytes_per_sequence(x: Layout) -> float:
    """One Mamba-2 layer's conv window and SSM state for one sequence, on one TP rank."""
    conv_channels = (x.mamba_inner + 2 * x.mamba_groups * x.mamba_state) // x.tp
    ssm = (x.mamba_heads // x.tp) * x.mamba_head_dim * x.mamba_state
    if x.torch_mamba:
        return float(conv_channels * (CONV_WIDTH - 1) * x.dtype_bytes + ssm * FP32)
    return float((conv_channels * CONV_WIDTH + ssm) * x.dtype_bytes)


def mamba_state_bytes(x: Layout, stage: int) -> float:
    """The Mamba-2 state of every `M` layer on `stage`, for all rollout sequences."""
    return _stage_parts(x, stage, "M") * x.rollout_rows * mamba_state_bytes_per_sequence(x)


def rollout_parts(x: Layout, stage: int) -> Dict[str, float]:
    """The rollout working set of `stage` by part (only the parts its layers have); {} without a rollout."""
    if not x.rollout:
        return {}
    parts = {"KV cache": kv_cache_bytes(x, stage), "Mamba state": mamba_state_bytes(x, stage)}
    return {name: n for name, n in parts.items() if n}
