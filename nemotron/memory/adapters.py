"""LoRA adapter tensors one rank holds (`peft=lora`), as nemotron/runtime/peft/lora.py shards them.

On a column-parallel layer (linear_qkv, linear_fc1, Mamba's in_proj) A (r x in) is replicated and B
(out/TP x r) sharded; on a row-parallel one (linear_proj, linear_fc2, out_proj) A (r x in/TP) is
sharded and B (out x r) replicated. Routed experts carry none (MoE shared experts do). The base is
frozen: its weights are plain tensors in the model's dtype, outside Megatron's DDP buffers, with no
gradients or optimizer state; the adapters are what trains (`nemotron.memory.estimate`).
"""

from __future__ import annotations

from typing import List, Tuple

from nemotron.memory.layout import Layout
from nemotron.memory.params import stage_layers


def _pair(x: Layout, name: str, in_local: int, out_local: int) -> List[int]:
    """A (r x in) and B (out x r) of one adapted layer, `in_local` x `out_local` the base layer's local
    shape: a column-parallel layer's input and a row-parallel one's output are whole on every rank."""
    if name not in x.lora_targets:
        return []
    return [x.lora_rank * in_local, out_local * x.lora_rank]


def _mlp(x: Layout, width: int) -> List[int]:
    fc1 = width * (2 if x.gated else 1) // x.tp
    return _pair(x, "linear_fc1", x.hidden, fc1) + _pair(x, "linear_fc2", width // x.tp, x.hidden)


def part_adapters(x: Layout, part: str) -> List[int]:
    """Adapter tensors of one layer part (`*`, `-`, `E`, `M`) on one rank."""
    if part == "*":
        qkv = x.kv_channels * (x.heads + 2 * x.groups) // x.tp
        proj_in = x.kv_channels * x.heads // x.tp
        return _pair(x, "linear_qkv", x.hidden, qkv) + _pair(x, "linear_proj", proj_in, x.hidden)
    if part == "-":
        return _mlp(x, x.ffn)
    if part == "E":
        return _mlp(x, x.shared_ffn) if x.shared_ffn else []
    if part == "M":
        inner, heads = x.mamba_inner // x.tp, x.mamba_heads // x.tp
        in_proj = 2 * inner + 2 * x.mamba_groups * x.mamba_state // x.tp + heads
        return _pair(x, "in_proj", x.hidden, in_proj) + _pair(x, "out_proj", inner, x.hidden)
    raise ValueError(f"unknown layer part {part!r}")


def stage_adapters(x: Layout, stage: int) -> Tuple[int, ...]:
    """The adapter tensors one rank of pipeline stage `stage` holds (empty without peft=lora)."""
    if not x.lora_rank:
        return ()
    return tuple(n for layer in stage_layers(x, stage) for part in layer for n in part_adapters(x, part))
