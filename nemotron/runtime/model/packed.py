"""Packed samples as Megatron-Core passes them: `PackedSeqParams`, an explicit argument of the model's
forward that reaches every layer, attention and Mamba mixer alike. Two layouts, chosen per run by
`nemotron.common.stack.packed_layout`:

A packed batch [batch, seq] holds several samples per row (`segment_ids`: one id per sample, padding
a segment of its own). `packed_seq_params(segment_ids)` describes its samples as Megatron's thd packing
would, over the rows laid end to end: `cu_seqlens` are the offsets where samples start in the
flattened [batch * seq] tokens (every row starts one), with `qkv_format="sbhd"`: the tensors keep their
[seq, batch] layout. On the local layer spec, attention keeps samples apart through the block-diagonal
mask the batch carries (`SegmentAwareDotProductAttention` accepts the argument and leaves it to the
mask); the pure-PyTorch Mamba-2 mixer restarts its conv and SSM state at every offset (`sample_starts`).

On the Transformer Engine spec (`thd_batch`): the rows are laid end to end as ONE sequence [1, b*seq]
and `thd_packed_seq_params` describes it as Megatron's thd packing does (Megatron-Bridge's packed SFT
too): int32 `cu_seqlens` over the samples (each row's tail padding a sample of its own, masked out of
the loss), `max_seqlen` the longest sample, which is what RoPE sizes its table by and what makes it
restart positions at every sample (a `max_seqlen` equal to the whole pack would continue them). TE's
varlen attention (padding_causal) keeps samples apart, mamba_ssm's mixer turns `cu_seqlens` into
`seq_idx` and resets its conv and scan state; no [seq, seq] mask is built. Flattening rows is why any
micro-batch size works (rows never join: each starts a sample), except under pipeline parallelism,
whose stages exchange [seq, micro_batch] tensors (refused at compose: nemotron.config.stack_rules).
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


def thd_packed_seq_params(segment_ids: torch.Tensor) -> PackedSeqParams:
    """The samples of a packed batch as one thd sequence: the rows laid end to end (see the docstring)."""
    sbhd = packed_seq_params(segment_ids)
    cu = sbhd.cu_seqlens_q
    longest = int((cu[1:] - cu[:-1]).max())
    return PackedSeqParams(qkv_format="thd", cu_seqlens_q=cu, cu_seqlens_kv=cu, max_seqlen_q=longest,
                           max_seqlen_kv=longest)


def thd_batch(batch: dict) -> dict:
    """A packed batch's model inputs as one row [1, b*seq] (tokens, labels, position_ids, loss_mask);
    the attention mask dropped (TE's varlen attention keeps samples apart by cu_seqlens)."""
    flat = {k: v.reshape(1, -1) for k, v in batch.items() if k != "attention_mask"}
    return flat


def sample_starts(params: PackedSeqParams, rows: int, seq: int, device: Any) -> torch.Tensor:
    """[rows, seq] bool: True where a packed sample starts (every `cu_seqlens` offset but the last)."""
    cu = params.cu_seqlens_q.to(device=device, dtype=torch.long)
    starts = torch.zeros(rows * seq, dtype=torch.bool, device=device)
    starts[cu[:-1]] = True
    return starts.view(rows, seq)


class SegmentAwareDotProductAttention(DotProductAttention):
    """Megatron's local core attention, taking `packed_seq_params` in bshd/sbhd layout: the batch's
    block-diagonal attention mask already keeps its samples apart (thd needs Transformer Engine)."""

    def forward(self, query, key, value, attention_mask, attn_mask_type=None, attention_bias=None,
                packed_seq_params=None):  # fmt: skip
        if packed_seq_params is not None and packed_seq_params.qkv_format == "thd":
            raise NotImplementedError("thd packed sequences need Transformer Engine's attention")
        return super().forward(query, key, value, attention_mask, attn_mask_type, attention_bias)
