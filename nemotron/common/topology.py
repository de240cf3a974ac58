"""How many ranks a run starts and how they split into model- and data-parallel groups, read from a
composed (or resolved) config: `resources.nodes`, `resources.procs_per_node`/`gpus_per_node` and the
`parallel` section.

Plain functions with no imports, so every layer may use them: the config checks
(`nemotron.config.validate`), the memory estimate (`nemotron.memory.layout`) and the launchers that
start one process per rank (`nemotron.launchers.local`, `slurm`, `script`).
"""

from __future__ import annotations

from typing import Any


def ranks_per_node(cfg: Any) -> int:
    """Ranks started on each node: resources.procs_per_node, else one per GPU, else 1 (CPU)."""
    res = cfg.resources
    if res.procs_per_node is not None:
        return int(res.procs_per_node)
    return int(res.gpus_per_node) or 1


def world_size(cfg: Any) -> int:
    """Total ranks of the job."""
    return int(cfg.resources.nodes) * ranks_per_node(cfg)


def model_parallel_size(cfg: Any) -> int:
    """TP x PP x CP: ranks one data-parallel replica spans."""
    p = cfg.parallel
    return p.tensor_model_parallel_size * p.pipeline_model_parallel_size * p.context_parallel_size


def data_parallel_size(cfg: Any) -> int:
    """DP as configured, or derived from the world size."""
    if cfg.parallel.data_parallel_size is not None:
        return int(cfg.parallel.data_parallel_size)
    return max(1, world_size(cfg) // model_parallel_size(cfg))
