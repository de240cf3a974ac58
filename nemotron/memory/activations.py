"""Activation memory of one micro batch on one rank, layer part by layer part.

Counts are the tensors autograd keeps for the backward pass, per layer part, in the model's dtype
unless noted: `s` is the sequence on this rank (seq / CP), `b` the rows of a micro batch (the micro
batch x `Layout.rows_per_item`: 2 for DPO's pairs, rl.group_size for GRPO's prompts), `t` TP; tensors
outside the tensor-parallel regions (the residual stream, norms) are split by `t` only under
sequence parallelism. The constants are those of the implementations we run: Megatron-Core's
local spec with torch norms on CPU (measured in tests/runtime/test_memory_activations.py against
PyTorch's allocator accounting) and Transformer Engine's fused norm + linear and flash attention on
GPUs. Per part:

* norm + the linear after it: 3 s b h (input, normalised, scaled; 2 with TE's fused LayerNormLinear);
* attention `*`: q, k, v and the context, 4 s b a d / t, plus the softmax output b a s^2 / t
  without flash attention (with flash: q, k, v at their own head counts and the output; GQA's
  repeated k/v are not kept);
* dense MLP `-`: 5 s b f / t gated (SwiGLU), 2 s b f / t otherwise;
* MoE `E`: the routed tokens s b k h, expert activations as the dense MLP on s b k tokens at the
  expert width, the expert outputs s b k h, and the shared expert (routing is assumed balanced);
* Mamba-2 `M`: mamba_ssm's kernels keep in_proj's output, the conv output, y and the gated norm's
  output plus the chunk states in fp32; the pure-PyTorch mixer keeps its chunked scan's
  intermediates (2 b s Q n_heads / t for chunk length Q, and measured per-token terms);
* the last stage: the final norm and the cross-entropy's fp32 softmax over the vocabulary shard;
  GRPO's loss (rl_step.token_logp) is vocab-parallel too but keeps three fp32 copies of the shard
  at its peak (the model's fp32 logits, the temperature-scaled shard the cross entropy keeps as its
  softmax, the entropy's one temporary), s b V / t x 12 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from nemotron.memory.layout import Layout

MAMBA_CHUNK = 128
"""SSD chunk length of both Mamba-2 implementations (Megatron's MambaMixer chunk_size)."""
FP32 = 4


@dataclass(frozen=True)
class Tokens:
    """The per-rank token block of one micro batch and the activation element size."""

    s: float
    b: int
    t: int
    sp: bool
    dtype_bytes: int

    def repl(self, width: float) -> float:
        """Bytes of an s x b x width tensor outside the TP regions (split by t only under SP)."""
        return self.s * self.b * width * self.dtype_bytes / (self.t if self.sp else 1)

    def split(self, width: float) -> float:
        """Bytes of an s x b x width tensor split over TP ranks (inside attention/MLP)."""
        return self.s * self.b * width * self.dtype_bytes / self.t


def tokens(x: Layout) -> Tokens:
    rows = x.micro_batch * x.rows_per_item
    return Tokens(s=x.seq / x.cp, b=rows, t=x.tp, sp=x.sequence_parallel, dtype_bytes=x.dtype_bytes)


def _norm_block(x: Layout, k: Tokens) -> float:
    return k.repl(x.hidden) * (2 if x.gpu else 3)


def attention_core(x: Layout, k: Tokens) -> float:
    """The softmax output of unfused attention (0 with flash attention): what selective recompute drops."""
    if x.flash_attention:
        return 0.0
    return k.b * x.heads * k.s * (k.s * x.cp) * k.dtype_bytes / k.t


def _attention(x: Layout, k: Tokens) -> float:
    qd, kvd = x.heads * x.kv_channels, x.groups * x.kv_channels
    if x.flash_attention:
        return _norm_block(x, k) + k.split(2 * qd + 2 * kvd)
    return _norm_block(x, k) + k.split(4 * qd) + attention_core(x, k)


def _mlp_acts(x: Layout, k: Tokens, width: float) -> float:
    return k.split(width * (5 if x.gated else 2))


def _moe(x: Layout, k: Tokens) -> float:
    routed = x.topk
    held = _norm_block(x, k) + k.repl(2 * routed * x.hidden) + _mlp_acts(x, k, routed * x.moe_ffn)
    router = k.s * k.b * x.experts * FP32 * 3  # logits, scores, top-k mask (fp32)
    return held + router + (_mlp_acts(x, k, x.shared_ffn) if x.shared_ffn else 0.0)


def _mamba(x: Layout, k: Tokens) -> float:
    inner, heads, bc = x.mamba_inner, x.mamba_heads, x.mamba_groups * x.mamba_state
    if x.torch_mamba:
        scan = 2 * k.b * k.s * MAMBA_CHUNK * heads * FP32 / k.t
        return _norm_block(x, k) + k.repl(3 * x.hidden) + k.split(13 * inner + 11 * bc + 5 * heads) + scan
    states = k.b * (k.s / MAMBA_CHUNK) * heads * x.mamba_head_dim * x.mamba_state * FP32 / k.t
    return _norm_block(x, k) + k.split(4 * inner + 4 * bc + heads) + states


def part_activations(x: Layout, part: str, k: Tokens) -> float:
    """Bytes one layer part keeps for backward (no recompute)."""
    if part == "*":
        return _attention(x, k)
    if part == "-":
        return _norm_block(x, k) + _mlp_acts(x, k, x.ffn)
    if part == "E":
        return _moe(x, k)
    return _mamba(x, k)


GRPO_SHARD_FP32_COPIES = 3
"""fp32 [s, b, vocab / t] tensors GRPO's token_logp holds at once: the logits (Megatron's Float16Module
returns fp32 on the last stage; fp32 on CPU), the temperature-scaled shard (overwritten in place by
the cross entropy, kept as its softmax) and the entropy's exp; measured in
tests/runtime/test_memory_activations.py."""


def output_activations(x: Layout, k: Tokens) -> float:
    """The last stage's final norm and loss over this rank's vocabulary shard: Megatron's cross
    entropy (its fp32 softmax), or GRPO's log-probabilities and entropy (fp32 copies)."""
    shard = k.s * k.b * x.vocab / k.t
    if x.grpo_logprobs:
        return _norm_block(x, k) + shard * GRPO_SHARD_FP32_COPIES * FP32
    return _norm_block(x, k) + shard * FP32
