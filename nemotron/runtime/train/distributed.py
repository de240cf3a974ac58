"""Process group and Megatron model-parallel setup for one training run, and its teardown.

Under torchrun (or any launcher that sets WORLD_SIZE/RANK/MASTER_ADDR/MASTER_PORT) the default
process group comes from env://; a plain `python train.py` becomes a world of one on 127.0.0.1
with a free port. gloo on CPU, nccl on CUDA (the device comes from LOCAL_RANK). Then Megatron's
parallel_state is initialised with the TP/PP/CP/EP sizes of `cfg.parallel`; data parallel fills
the rest.
`teardown()` undoes both, so tests can run training twice in one process.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from nemotron.runtime import cpu_compat


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    data_parallel_size: int
    owns_process_group: bool
    """True when `init()` created the default process group (teardown then destroys it)."""


_CURRENT: DistInfo | None = None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def init_process_group() -> bool:
    """Create the default process group unless one exists; True when this call created it."""
    if dist.is_initialized():
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(_env_int("LOCAL_RANK", 0))
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ:
        dist.init_process_group(backend=backend, init_method="env://")
    else:
        init_method = f"tcp://127.0.0.1:{_free_port()}"
        dist.init_process_group(backend=backend, init_method=init_method, rank=0, world_size=1)
    return True


def data_parallel_size(parallel: Any, world_size: int) -> int:
    """World size divided by TP x PP x CP, checked against `parallel.data_parallel_size` if set."""
    model_parallel = (
        parallel.tensor_model_parallel_size * parallel.pipeline_model_parallel_size * parallel.context_parallel_size
    )
    if world_size % model_parallel:
        raise ValueError(
            f"world size {world_size} is not divisible by tensor x pipeline x context parallel "
            f"= {model_parallel} (parallel.*_parallel_size)"
        )
    dp = world_size // model_parallel
    if parallel.data_parallel_size not in (None, dp):
        raise ValueError(
            f"parallel.data_parallel_size={parallel.data_parallel_size} but world size "
            f"{world_size} / (TP x PP x CP = {model_parallel}) gives {dp}"
        )
    return dp


def _init_model_parallel(parallel: Any) -> None:
    from megatron.core import parallel_state

    if parallel_state.model_parallel_is_initialized():
        cpu_compat.destroy_model_parallel_groups()
    parallel_state.initialize_model_parallel(
        tensor_model_parallel_size=parallel.tensor_model_parallel_size,
        pipeline_model_parallel_size=parallel.pipeline_model_parallel_size,
        virtual_pipeline_model_parallel_size=None,
        context_parallel_size=parallel.context_parallel_size,
        expert_model_parallel_size=parallel.expert_model_parallel_size,
    )


def init(cfg: Any) -> DistInfo:
    """Initialise torch.distributed and Megatron's model-parallel groups from `cfg.parallel`."""
    global _CURRENT
    owns = init_process_group()
    try:
        dp = data_parallel_size(cfg.parallel, dist.get_world_size())
        _init_model_parallel(cfg.parallel)
    except BaseException:
        if owns:
            dist.destroy_process_group()
        raise
    _CURRENT = DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=_env_int("LOCAL_RANK", 0),
        local_world_size=_env_int("LOCAL_WORLD_SIZE", 1),
        data_parallel_size=dp,
        owns_process_group=owns,
    )
    return _CURRENT


def teardown() -> None:
    """Destroy Megatron's model-parallel groups, and the default group if `init()` created it."""
    global _CURRENT
    from megatron.core import parallel_state

    if parallel_state.model_parallel_is_initialized():
        cpu_compat.destroy_model_parallel_groups()
    if _CURRENT is not None and _CURRENT.owns_process_group and dist.is_initialized():
        dist.destroy_process_group()
    _CURRENT = None


def barrier() -> None:
    """dist.barrier() when a process group exists, else nothing."""
    if dist.is_initialized():
        dist.barrier()
