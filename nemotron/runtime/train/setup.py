"""Everything the loop needs, built once: threads, seed, datasets, model, DDP, optimizer, resume.

`setup(cfg, info, stage, checkpointer)` calls the stage's hooks in the contract's order
(nemotron/runtime/train/contract.py) and restores a checkpoint last, so nothing after it draws
random numbers the checkpoint's RNG states did not fix.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np
import torch

from nemotron.runtime import cpu_compat
from nemotron.runtime.checkpoint.checkpointer import Checkpointer
from nemotron.runtime.checkpoint.store import Position
from nemotron.runtime.data import gpt as gpt_data
from nemotron.runtime.model.build import build_model
from nemotron.runtime.peft import adapters
from nemotron.runtime.train import distributed, flops, optim


@dataclass
class Run:
    """What the loop and the stage's step work on, built once by `setup`."""

    cfg: Any
    info: distributed.DistInfo
    stage: Any
    """The run's `Stage` (its forward_step is the schedule's forward)."""
    checkpointer: Checkpointer
    model: Any
    optimizer: Any
    scheduler: Any
    train_iter: Iterator
    valid_iter: Optional[Iterator]
    num_microbatches: int
    position: Position
    """Steps done and samples consumed so far (what a checkpoint saves)."""
    flops_per_token: Optional[float] = None
    """Model FLOPs per token on this rank (GPU only: for TFLOP/s and MFU)."""
    peak_tflops: Optional[float] = None
    """The GPU's dense bf16 peak, when known."""


def num_threads(cfg: Any, info: distributed.DistInfo) -> int:
    """`train.num_threads`, or the CPUs this process may use shared by the node's ranks."""
    if cfg.train.num_threads > 0:
        return cfg.train.num_threads
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))  # the CPUs this process may use (Slurm, taskset)
    else:
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, info.local_world_size))


def num_microbatches(train_cfg: Any, dp_size: int) -> int:
    """global_batch_size / (micro_batch_size x data-parallel size), which must divide evenly."""
    per_step = train_cfg.micro_batch_size * dp_size
    if train_cfg.global_batch_size % per_step:
        raise ValueError(
            f"train.global_batch_size={train_cfg.global_batch_size} is not divisible by "
            f"train.micro_batch_size={train_cfg.micro_batch_size} x data-parallel size {dp_size}"
        )
    return train_cfg.global_batch_size // per_step


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and Megatron's model-parallel RNG (offset by the pipeline stage)."""
    from megatron.core import parallel_state

    seed = seed + 100 * parallel_state.get_pipeline_model_parallel_rank()
    random.seed(seed)
    np.random.seed(seed)
    cpu_compat.seed_model_parallel(seed)


def setup(cfg: Any, info: distributed.DistInfo, stage: Any, checkpointer: Checkpointer) -> Run:
    """Build the run: the stage's datasets and model, DDP, optimizer and schedule, then resume."""
    from megatron.core import parallel_state

    torch.set_num_threads(num_threads(cfg, info))
    cpu_compat.install()
    n_micro = num_microbatches(cfg.train, info.data_parallel_size)
    tokenizer, train_ds, valid_ds = stage.datasets(cfg, cpu_compat.on_cpu())
    set_seed(cfg.train.seed)
    model, config = build_model(cfg, tokenizer.vocab_size)
    gpu_flops, peak = flops.gpu_flops(cfg, model, tokenizer.vocab_size)
    stage.configure(cfg, config)
    if checkpointer.found is None:
        stage.init_weights(cfg, model)
    stage.prepare(cfg, train_ds)
    adapters.attach(cfg, model, checkpointer.found)  # peft=lora: frozen base, adapters
    model = optim.wrap_ddp(cfg, model, config)
    optimizer, scheduler = optim.build_optimizer(cfg, model)
    config.grad_scale_func = optimizer.scale_loss
    position = checkpointer.resume(model, optimizer, scheduler)  # restores RNG states: the last draw
    dp_rank, dp, mbs = parallel_state.get_data_parallel_rank(), info.data_parallel_size, cfg.train.micro_batch_size
    train_iter = gpt_data.batch_iterator(train_ds, mbs, dp_rank, dp, position.consumed_train_samples)
    valid_iter = None
    if valid_ds is not None:
        valid_iter = gpt_data.batch_iterator(valid_ds, mbs, dp_rank, dp, position.consumed_valid_samples)
    return Run(
        cfg,
        info,
        stage,
        checkpointer,
        model,
        optimizer,
        scheduler,
        train_iter,
        valid_iter,
        n_micro,
        position,
        gpu_flops,
        peak,
    )
