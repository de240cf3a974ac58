"""Megatron-Core's inference context, in one place (how generation continues a batch of sequences).

megatron-core 0.16 passes a `StaticInferenceContext` to GPTModel / MambaModel forwards: attention
layers allocate their KV cache in its `key_value_memory_dict` (on `torch.cuda.current_device()`,
which cpu_compat points at the CPU) and read `sequence_len_offset`, the position the next forward
starts at, which the caller advances; only the last position's logits are computed
(`materialize_only_last_token_logits`). Older releases call it `InferenceParams`. Checked against the
Megatron-Core range of cpu_compat (`SUPPORTED`, refused outside it by `cpu_compat.install()`).

`fast_inference(model)` is the eval stage's fast path on the local layer spec: the core attention
through PyTorch's SDPA and, without tensor parallelism, each Megatron linear layer as one `F.linear`
(the classes swapped in subclass Megatron's and rely on its attribute names, hence here).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

import torch.nn.functional as F
from megatron.core.tensor_parallel.layers import ColumnParallelLinear, RowParallelLinear
from megatron.core.transformer.enums import AttnMaskType

from nemotron.runtime import cpu_compat
from nemotron.runtime.model.packed import SegmentAwareDotProductAttention

SUPPORTED = {"megatron-core": cpu_compat.SUPPORTED["megatron-core"]}
"""The Megatron-Core releases this module's use of the inference context was checked against."""


def static_context(batch_size: int, max_sequence_length: int) -> Any:
    """A fresh context for `batch_size` sequences of at most `max_sequence_length` tokens."""
    try:
        from megatron.core.inference.contexts import StaticInferenceContext
    except ImportError:  # before megatron-core 0.12
        from megatron.core import InferenceParams as StaticInferenceContext

    return StaticInferenceContext(batch_size, max_sequence_length)


def advance(context: Any, offset: int) -> None:
    """The next forward continues at position `offset` (tokens before it are cached)."""
    context.sequence_len_offset = offset
    if hasattr(context, "enable_decode_mode"):
        context.enable_decode_mode()


@contextlib.contextmanager
def generation_mode() -> Iterator[None]:
    """CPU quirks installed (KV buffers on 'cuda' land on the CPU)."""
    cpu_compat.install()
    yield


# ---- evaluation's fast path: the same model, cheaper local modules -------------------------------


class SdpaAttention(SegmentAwareDotProductAttention):
    """The local spec's core attention through `F.scaled_dot_product_attention` (one fused kernel,
    grouped-query heads without repeating keys) where it computes the same thing: eval mode, no packed
    samples or bias, a causal (None) mask with as many queries as keys or one query, or an explicit
    mask leaving each query a key. Anything else runs Megatron's baddbmm + masked softmax."""

    def forward(self, query, key, value, attention_mask, attn_mask_type=None, attention_bias=None,
                packed_seq_params=None):  # fmt: skip
        if not self._fused_applies(query, key, attention_mask, attention_bias, packed_seq_params):
            return super().forward(query, key, value, attention_mask, attn_mask_type, attention_bias,
                                   packed_seq_params)  # fmt: skip
        sq, b, heads, dim = query.shape
        q, k, v = (t.permute(1, 2, 0, 3) for t in (query, key, value))  # [b, heads, s, dim]
        keep = None if attention_mask is None else ~attention_mask  # Megatron masks True, SDPA keeps it
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, is_causal=keep is None and sq > 1,
                                             scale=self.softmax_scale, enable_gqa=k.shape[1] != heads)  # fmt: skip
        return out.permute(2, 0, 1, 3).reshape(sq, b, heads * dim)

    def _fused_applies(self, query, key, attention_mask, attention_bias, packed_seq_params) -> bool:  # noqa: ANN001
        if self.training or attention_bias is not None or packed_seq_params is not None:
            return False
        if attention_mask is None:  # causal by the layer's mask type: SDPA's is_causal aligns top-left
            causal = self.attn_mask_type == AttnMaskType.causal
            return causal and (query.shape[0] == 1 or query.shape[0] == key.shape[0])
        return not bool(attention_mask.all(-1).any())  # a query with no key: Megatron's uniform row


def _sdpa_fits(module: Any) -> bool:
    """Whether `module`'s config is plain softmax attention (what SdpaAttention computes)."""
    c = module.config
    plain = getattr(c, "softmax_type", "vanilla") == "vanilla" and getattr(c, "window_size", None) is None
    return plain and not c.apply_query_key_layer_scaling


def _tp_size(module: Any) -> int:
    from megatron.core import parallel_state

    if module.tp_group is not None:
        return module.tp_group.size()
    initialized = parallel_state.model_parallel_is_initialized()
    return parallel_state.get_tensor_model_parallel_world_size() if initialized else 1


class PlainColumnLinear(ColumnParallelLinear):
    """ColumnParallelLinear without tensor parallelism: one `F.linear`, none of Megatron's autograd
    functions and region copies (identities at TP=1) around it; returns (output, bias) as it does."""

    def forward(self, input_, weight=None, runtime_gather_output=None):  # noqa: ANN001
        weight = self.weight if weight is None else weight
        if self.skip_bias_add:
            return F.linear(input_, weight), self.bias
        return F.linear(input_, weight, self.bias), None


class PlainRowLinear(RowParallelLinear):
    """RowParallelLinear without tensor parallelism: one `F.linear` (see PlainColumnLinear)."""

    def forward(self, input_):  # noqa: ANN001
        if self.skip_bias_add:
            return F.linear(input_, self.weight), self.bias
        return F.linear(input_, self.weight, self.bias), None


def _fast_class(module: Any) -> Optional[type]:
    """The eval-only class `module` may run as, or None."""
    if type(module) is SegmentAwareDotProductAttention:
        return SdpaAttention if _sdpa_fits(module) else None
    plain = {ColumnParallelLinear: PlainColumnLinear, RowParallelLinear: PlainRowLinear}.get(type(module))
    if plain is None or module.config.sequence_parallel or _tp_size(module) != 1:
        return None
    return plain


def fast_inference(model: Any) -> int:
    """Run `model`'s local core attention through SDPA and its single-partition linear layers as one
    `F.linear` (classes above): same parameters and results to fp32 rounding, a fraction of the
    per-call cost on a small model. For evaluation only: training keeps Megatron's modules (and their
    bitwise numerics). Returns how many modules changed class."""
    changed = 0
    for module in model.modules():
        fast = _fast_class(module)
        if fast is not None:
            module.__class__ = fast  # subclasses adding no state: only forward differs
            changed += 1
    return changed
