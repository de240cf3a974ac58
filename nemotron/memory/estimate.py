"""Memory per GPU of a layout, per pipeline stage, and the worst stage.

Weights, gradients and optimizer state follow Megatron-Core's DistributedDataParallel and optimizer
as `nemotron.runtime.train.optim` configures them: gradients in fp32 buffers (`grad_reduce_in_fp32`);
on GPUs bf16 weights with fp32 master copies and two fp32 Adam moments (12 bytes a parameter), on
CPU fp32 weights that are their own masters (8). The distributed optimizer shards that state over
data parallelism (routed experts over the expert data-parallel group) and keeps weights and
gradients in buffers padded as Megatron pads them (each tensor to 64 elements, each bucket to
lcm(DP, 128)). Activations: `nemotron.memory.activations`, times the micro batches the 1F1B
pipeline schedule keeps in flight on the stage (PP - stage, at most the micro batches per step).

Evaluation (`*/eval`) holds the weights alone, in their dtype (no DDP buffers, gradients, optimizer
or master copies), and the larger of two working sets: scoring a batch of `eval.batch_size` rows (one
layer's activations at a time under no_grad, plus the gathered logits and their fp32 log-softmax over
the whole vocabulary, `nemotron/runtime/eval/lm.py`) or generating one (the KV cache and Mamba state
of `eval.batch_size` sequences, as a GRPO rollout's).

With `peft=lora` the base is frozen: its weights are plain tensors in their dtype (no DDP buffer,
gradients, master copies or optimizer state) and only the adapters (`nemotron.memory.adapters`) get
Megatron's buffers, fp32 gradients and Adam state; activations are the full model's (the backward
pass runs through the frozen layers to reach the adapters).

DPO and GRPO (with rl.kl) add a frozen reference model: this rank's parameters again, unpadded, in
the weights' dtype (Megatron's Float16Module without DDP buffers, gradients or optimizer state). A
GRPO step has two phases one after the other, generation then training, so its activations row is
the larger of the two phases' working sets: training activations (rows = micro batch x
rl.group_size) or the rollout's KV cache and Mamba state (`nemotron.memory.rollout`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

from nemotron.memory import activations as acts
from nemotron.memory.adapters import stage_adapters
from nemotron.memory.layout import Layout
from nemotron.memory.params import StageParams, stage_layers, stage_params
from nemotron.memory.rollout import rollout_parts

GIB = 1024**3
GPU_FIXED_BYTES = 2 * GIB
"""Allowance on a GPU for the CUDA context, cuBLAS/cuDNN workspaces and NCCL buffers."""
FRAGMENTATION = 0.10
"""Allowance for the caching allocator's fragmentation, as a share of everything else (GPU)."""
COMPONENTS = ("weights", "gradients", "optimizer", "reference", "activations", "allowance")
"""The rows of an estimate, in table order (`reference` is 0 for pretraining and SFT)."""


@dataclass(frozen=True)
class StageEstimate:
    """Bytes one GPU of a pipeline stage needs, by component."""

    stage: int
    parts: Dict[str, float]
    params: int
    """Parameters this rank holds (unpadded)."""
    phases: Dict[str, float] = field(default_factory=dict)
    """Activation bytes of each phase of a step: `training` and, for GRPO, `rollout`;
    parts["activations"] is the larger."""

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    @property
    def peak_phase(self) -> str:
        """The phase whose working set is the activations row: `training` or `rollout`."""
        return max(self.phases, key=self.phases.get) if self.phases else "training"


def _pad(n: int, divisor: int) -> int:
    return -(-n // divisor) * divisor


def buffer_elements(tensors: Sequence[int], dp: int, distributed: bool) -> int:
    """Elements of one bucket of Megatron's contiguous grad (and, distributed, param) buffer."""
    if not distributed:
        return sum(tensors)
    return _pad(sum(_pad(n, 64) for n in tensors), math.lcm(dp, 128))


def dense_buffer(x: Layout, p: StageParams) -> int:
    """The dense buffer; a shared embedding under the distributed optimizer is a bucket of its own."""
    dp = x.dp * x.cp
    if not (x.distributed_optimizer and p.shared_embedding):
        return buffer_elements(p.dense, dp, x.distributed_optimizer)
    rest = list(p.dense)
    rest.remove(p.shared_embedding)
    return buffer_elements(rest, dp, True) + buffer_elements([p.shared_embedding], dp, True)


def expert_dp(x: Layout) -> int:
    """Ranks an expert's weights are replicated over (Megatron's expert data-parallel group)."""
    return max(1, x.dp * x.cp // x.ep)


def _weights_grads_optimizer(x: Layout, p: StageParams) -> Dict[str, float]:
    if not x.trains:
        return {"weights": float(p.count * x.dtype_bytes), "gradients": 0.0, "optimizer": 0.0}
    dense = dense_buffer(x, p)
    expert = buffer_elements(p.expert, expert_dp(x), x.distributed_optimizer)
    state_bytes = 12 if x.gpu else 8
    if x.distributed_optimizer:
        state = dense / (x.dp * x.cp) + expert / expert_dp(x)
        weights = dense + expert
    else:
        state, weights = p.count, p.count
    return {
        "weights": weights * x.dtype_bytes,
        "gradients": (dense + expert) * acts.FP32,
        "optimizer": state * state_bytes,
    }


def _lora_parts(x: Layout, p: StageParams, stage: int) -> Dict[str, float]:
    """peft=lora: the frozen base's weights as plain tensors (no DDP buffer, gradient or optimizer
    state); the adapters' weights, gradients and optimizer state as a trained model's."""
    adapters = stage_adapters(x, stage)
    buffer = buffer_elements(adapters, x.dp * x.cp, x.distributed_optimizer)
    trained = buffer if x.distributed_optimizer else sum(adapters)
    state = buffer / (x.dp * x.cp) if x.distributed_optimizer else sum(adapters)
    return {
        "weights": float((p.count + trained) * x.dtype_bytes),
        "gradients": float(buffer * acts.FP32),
        "optimizer": state * (12 if x.gpu else 8),
    }


def in_flight(x: Layout, stage: int) -> int:
    """Micro batches whose activations stage `stage` holds at once under 1F1B."""
    return max(1, min(x.pp - stage, x.micro_batches))


def stage_activations(x: Layout, stage: int) -> float:
    """Peak activation bytes of `stage`: the micro batches in flight, plus recompute's working set."""
    k = acts.tokens(x)
    parts = [part for layer in stage_layers(x, stage) for part in layer]
    full = [acts.part_activations(x, part, k) for part in parts]
    out = acts.output_activations(x, k) if stage == x.pp - 1 else 0.0
    if x.recompute == "full":
        held = k.repl(x.hidden) * len(stage_layers(x, stage))
        peak_one = held + max([out, *_layer_sums(x, stage, k)])
        return (in_flight(x, stage) - 1) * held + peak_one
    if x.recompute == "selective":
        core = acts.attention_core(x, k)
        held = sum(full) - core * parts.count("*") + out
        return in_flight(x, stage) * held + max(0.0, core - out)
    return in_flight(x, stage) * (sum(full) + out)


def _layer_sums(x: Layout, stage: int, k: acts.Tokens) -> List[float]:
    return [sum(acts.part_activations(x, part, k) for part in layer) for layer in stage_layers(x, stage)]


def reference_bytes(x: Layout, p: StageParams) -> float:
    """The frozen reference model's weights on this rank (0 without one)."""
    return float(p.count * x.dtype_bytes) if x.reference else 0.0


def scoring_activations(x: Layout, stage: int) -> float:
    """Evaluation's scoring forward (no_grad): the largest layer's activations, and on the last stage
    the logits gathered over the vocabulary with their fp32 copy and log-softmax."""
    k = acts.tokens(x)
    layer = max(_layer_sums(x, stage, k), default=0.0)
    logits = k.s * k.b * x.vocab * (x.dtype_bytes + 2 * acts.FP32) if stage == x.pp - 1 else 0.0
    return layer + logits


def phase_activations(x: Layout, stage: int) -> Dict[str, float]:
    """Working set of each phase of a step on `stage`: training (evaluation: scoring) and the
    generation of GRPO's rollout or of an eval batch."""
    if x.trains:
        phases = {"training": stage_activations(x, stage)}
    else:
        phases = {"scoring": scoring_activations(x, stage)}
    if x.rollout:
        phases["rollout"] = sum(rollout_parts(x, stage).values())
    return phases


def estimate_stage(x: Layout, stage: int) -> StageEstimate:
    p = stage_params(x, stage)
    parts = _lora_parts(x, p, stage) if x.lora_rank and x.trains else _weights_grads_optimizer(x, p)
    parts["reference"] = reference_bytes(x, p)
    phases = phase_activations(x, stage)
    parts["activations"] = max(phases.values())
    rest = sum(parts.values())
    parts["allowance"] = GPU_FIXED_BYTES + FRAGMENTATION * rest if x.gpu else 0.0
    return StageEstimate(stage=stage, parts=parts, params=p.count, phases=phases)


def estimate(x: Layout) -> StageEstimate:
    """The estimate of the stage needing the most memory (the worst rank)."""
    return max((estimate_stage(x, s) for s in range(x.pp)), key=lambda e: e.total)
