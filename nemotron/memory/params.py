"""Parameters one rank holds, tensor by tensor, as Megatron-Core shards them.

Tensor parallelism splits the attention heads, MLP/expert widths, Mamba heads and groups and the
vocabulary; norms, routers and row-parallel biases are replicated. Expert parallelism gives each
rank `experts / EP` routed experts (expert tensor parallelism = TP, Megatron's default). Pipeline
stage k holds layers `[k L/PP, (k+1) L/PP)`, the first stage the embeddings, the last the final norm
and the output layer (and, with tied embeddings and PP > 1, its own copy of the embedding).
`tests/runtime/test_memory_params.py` checks every count against the models Megatron builds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

from nemotron.memory.layout import Layout

CONV_WIDTH = 4
"""Mamba's depthwise causal conv1d kernel width (Megatron's d_conv)."""


@dataclass(frozen=True)
class StageParams:
    """The parameter tensors (element counts) one rank of a pipeline stage holds."""

    dense: Tuple[int, ...]
    """Tensors replicated over data parallelism (everything but routed experts)."""
    expert: Tuple[int, ...]
    """Routed-expert tensors, replicated over the expert data-parallel group."""
    shared_embedding: int = 0
    """Of `dense`: the tied embedding (first stage) or its copy (last stage), when PP > 1."""

    @property
    def count(self) -> int:
        return sum(self.dense) + sum(self.expert)


def _attention(x: Layout) -> List[int]:
    qkv = x.kv_channels * (x.heads + 2 * x.groups) // x.tp
    proj_in = x.kv_channels * x.heads // x.tp
    out = [x.norm_params, x.hidden * qkv, proj_in * x.hidden]
    return out + ([qkv, x.hidden] if x.bias else [])


def _mlp(x: Layout, width: int, tp: int) -> List[int]:
    fc1 = width * (2 if x.gated else 1) // tp
    return [x.hidden * fc1, width // tp * x.hidden] + ([fc1, x.hidden] if x.bias else [])


def _moe(x: Layout) -> Tuple[List[int], List[int]]:
    dense = [x.norm_params, x.experts * x.hidden]  # pre-MLP norm, router
    if x.shared_ffn:
        dense += _mlp(x, x.shared_ffn, x.tp)
    routed = [n for _ in range(x.experts // x.ep) for n in _mlp(x, x.moe_ffn, x.tp)]
    return dense, routed


def _mamba(x: Layout) -> List[int]:
    inner, heads = x.mamba_inner // x.tp, x.mamba_heads // x.tp
    bc = 2 * x.mamba_groups * x.mamba_state // x.tp
    conv = inner + bc
    return [
        x.norm_params,
        x.hidden * (2 * inner + bc + heads),
        conv * CONV_WIDTH,
        conv,
        heads,
        heads,
        heads,
        inner,
        inner * x.hidden,
    ]  # in_proj, conv w/b, dt_bias, A_log, D, norm, out


def part_params(x: Layout, part: str) -> Tuple[List[int], List[int]]:
    """(dense, routed) tensors of one layer part: `*`, `-`, `E` or `M`."""
    if part == "*":
        return _attention(x), []
    if part == "-":
        return [x.norm_params, *_mlp(x, x.ffn, x.tp)], []
    if part == "E":
        return _moe(x)
    if part == "M":
        return _mamba(x), []
    raise ValueError(f"unknown layer part {part!r}")


def stage_layers(x: Layout, stage: int) -> Tuple[str, ...]:
    """The layers of pipeline stage `stage` (an even split, as Megatron makes it)."""
    per = len(x.layers) // x.pp
    return x.layers[stage * per : (stage + 1) * per]


def _embedding_ends(x: Layout, stage: int) -> Tuple[List[int], int]:
    """Embedding / final norm / output-layer tensors of `stage`, and the shared-embedding size."""
    vocab = x.vocab // x.tp * x.hidden
    tensors, shared = [], 0
    if stage == 0:
        tensors += [vocab] + ([x.seq * x.hidden] if x.learned_positions else [])
        shared = vocab if x.tied and x.pp > 1 else 0
    if stage == x.pp - 1:
        tensors.append(x.norm_params)
        if not x.tied or x.pp > 1:
            tensors.append(vocab)
            shared = vocab if x.tied else shared
    return tensors, shared


def stage_params(x: Layout, stage: int) -> StageParams:
    """The parameters one (TP, EP) rank of pipeline stage `stage` holds."""
    dense, routed = [], []
    for layer in stage_layers(x, stage):
        for part in layer:
            d, r = part_params(x, part)
            dense += d
            routed += r
    ends, shared = _embedding_ends(x, stage)
    return StageParams(dense=tuple(dense + ends), expert=tuple(routed), shared_embedding=shared)
