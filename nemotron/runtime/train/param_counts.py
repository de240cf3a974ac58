"""Trainable and total parameters of the model a run trains, as the tracker records them at its start.

`counts(model)` sums over the ranks that hold different parts of the model, each parameter counted
once: a tensor-parallel shard on every TP rank, a replicated parameter on TP rank 0 only, the last
pipeline stage's copy of a tied embedding (`shared`) not at all; dense parameters are summed over the
model-parallel group (TP x PP), expert-parallel ones (`allreduce=False`) over the expert group
(expert TP x EP x PP). Every rank calls it (the sums are collectives). With `peft=lora` the trainable
ones are the adapters; the frozen base counts in the total only.
"""

from __future__ import annotations

from typing import Any, Dict

import torch

TRAINABLE, TOTAL = "params/trainable", "params/total"
"""The metric keys (logged once, at the run's first step)."""


def counts(model: Any) -> Dict[str, float]:
    """{TRAINABLE: n, TOTAL: n} of `model` (a module or a list of model chunks), over all its ranks."""
    import torch.distributed as dist
    from megatron.core import parallel_state as ps

    tp_rank = {True: ps.get_tensor_model_parallel_rank(), False: ps.get_expert_tensor_parallel_rank()}
    sums = {True: torch.zeros(2, dtype=torch.float64), False: torch.zeros(2, dtype=torch.float64)}
    for chunk in model if isinstance(model, (list, tuple)) else [model]:
        for param in chunk.parameters():
            dense = bool(getattr(param, "allreduce", True))
            if getattr(param, "shared", False):
                continue
            if getattr(param, "tensor_model_parallel", False) or tp_rank[dense] == 0:
                sums[dense] += torch.tensor([param.numel() if param.requires_grad else 0, param.numel()])
    if dist.is_initialized():
        groups = {True: ps.get_model_parallel_group(), False: ps.get_expert_tensor_model_pipeline_parallel_group()}
        for dense, group in groups.items():
            if group is not None:
                dist.all_reduce(sums[dense], group=group)
    trainable, total = (sums[True] + sums[False]).tolist()
    return {TRAINABLE: trainable, TOTAL: total}
