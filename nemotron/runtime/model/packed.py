"""Packed samples as Megatron-Core passes them: `PackedSeqParams`, an explicit argument of the model's
forward that reaches every layer, attention and Mamba mixer alike.

A packed batch [batch, seq] holds several samples per row (`segment_ids`: one id per sample, padding
a segment of its own). `packed_seq_params(segment_ids)` describes its samples as Megatron's thd packing
would, over the rows laid end to end: `cu_seqlens` are the offsets where samples start in the
flattened [batch * seq] tokens (every row starts one), with `qkv_format="sbhd"`: the tensors keep their
[seq, batch] layout. On the local layer spec, attention keeps samples apart through the block-diagonal
mask the batch carries (`SegmentAwareDotProductAttention` accepts the argument and leaves it to the
mask); the pure-PyTorch Mamba-2 mixer restarts its conv and SSM state at every offset (`sample_runs`).
"""

from __future__ import annotations

from typing import Any, Tuple

import torch
from megatron.core.packed_seq_params import PackedSeqParams
from megatron.core.transformer.dot_product_attention import DotProductAttention


def packed_seq_params(segment_ids: torch.Tensor) -> PackedSeqParams:
    """The samples of a packed batch (`segment_ids` [batch, seq]) as offsets into its flattened tokens."""
    b, seq = segment_ids.shape
    starts = torch.ones(b, seq, dtype=torch.bool, device=segment_ids.device)
    starts[:, 1:] = segment_ids[:, 1:] != segment_ids[:, :-1]
    offsets = starts.reshape(-1).nonzero().squeeze(1)
    cu = torch.cat([offsets, offsets.new_tensor([b * seq])]).to(torch.int32)
    # max_seqlen is the rows' length: Megatron sizes its rotary table by it (bshd/sbhd layout).
    return PackedSeqParams(qkv_format="sbhd", cu_seqlens_q=cu, cu_seqlens_kv=cu, max_seqlen_q=seq, max_seqlen_kv=seq)


def sample_runs(params: PackedSeqParams, device: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    """(source index [samples, longest], valid [samples, longest]) into the flattened tokens: one row
    per sample, left-aligned, padded at its end."""
    cu = params.cu_seqlens_q.to(device=device, dtype=torch.long)
    starts, lengths = cu[:-1], cu[1:] - cu[:-1]
    steps = torch.arange(int(lengths.max()), device=device)
    valid = steps[None, :] < lengths[:, None]
    return (starts[:, None] + steps[None, :]).clamp(max=int(cu[-1]) - 1), valid


class SegmentAwareDotProductAttention(DotProductAttention):
    """Megatron's local core attention, taking `packed_seq_params` in bshd/sbhd layout: the batch's
    block-diagonal attention mask already keeps its samples apart (thd needs Transformer Engine)."""

    def forward(self, query, key, value, attention_mask, attn_mask_type=None, attention_bias=None,
                packed_seq_params=None):  # fmt: skip
        if packed_seq_params is not None and packed_seq_params.qkv_format == "thd":
            raise NotImplementedError("thd packed sequences need Transformer Engine's attention")
        return super().forward(query, key, value, attention_mask, attn_mask_type, attention_bias)
