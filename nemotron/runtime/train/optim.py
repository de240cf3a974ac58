"""The optimizer, its schedule and the DistributedDataParallel wrapper of every training stage.

As Megatron-LM's examples/run_simple_mcore_train_loop.py builds them: Megatron-Core's
`get_megatron_optimizer` (Adam) with `OptimizerParamScheduler`, and its `DistributedDataParallel`
with fp32 gradient buffers. On CPU, fp32 parameters are their own masters (`cpu_compat`).
"""

from __future__ import annotations

from typing import Any, Tuple

import torch

from nemotron.runtime import cpu_compat


def min_lr(optim: Any) -> float:
    """optim.min_lr, or a tenth of the peak when it is null."""
    return optim.min_lr if optim.min_lr is not None else optim.lr / 10


def build_optimizer(cfg: Any, model: Any) -> Tuple[Any, Any]:
    """Megatron's optimizer (Adam, `optim.*`; distributed when parallel.use_distributed_optimizer) and
    its LR/weight-decay scheduler over `train.steps`."""
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

    o, steps = cfg.optim, cfg.train.steps
    config = OptimizerConfig(
        optimizer="adam",
        lr=o.lr,
        min_lr=min_lr(o),
        weight_decay=o.weight_decay,
        adam_beta1=o.adam_beta1,
        adam_beta2=o.adam_beta2,
        adam_eps=o.adam_eps,
        clip_grad=o.clip_grad,
        bf16=not cpu_compat.on_cpu(),
        params_dtype=torch.float32 if cpu_compat.on_cpu() else torch.bfloat16,
        use_distributed_optimizer=cfg.parallel.use_distributed_optimizer,
    )
    with cpu_compat.cuda_as_cpu():
        optimizer = get_megatron_optimizer(config, [model])
    style = str(getattr(o.decay_style, "value", o.decay_style))
    scheduler = OptimizerParamScheduler(
        optimizer,
        init_lr=0.0,
        max_lr=o.lr,
        min_lr=min_lr(o),
        lr_warmup_steps=min(o.warmup_steps, steps - 1),
        lr_decay_steps=steps,
        lr_decay_style=style,
        start_wd=o.weight_decay,
        end_wd=o.weight_decay,
        wd_incr_steps=steps,
        wd_incr_style="constant",
        wsd_decay_steps=o.wsd_decay_steps or max(1, steps // 5),
        lr_wsd_decay_style="linear",
    )
    return optimizer, scheduler


def wrap_ddp(cfg: Any, model: Any, config: Any) -> Any:
    """The model in Megatron's DistributedDataParallel (fp32 grad buffers), hooked into `config`."""
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig, finalize_model_grads

    ddp_config = DistributedDataParallelConfig(
        grad_reduce_in_fp32=True,
        overlap_grad_reduce=False,
        use_distributed_optimizer=cfg.parallel.use_distributed_optimizer,
    )
    model = DistributedDataParallel(config=config, ddp_config=ddp_config, module=model)
    config.no_sync_func = model.no_sync
    config.finalize_model_grads_func = finalize_model_grads
    return model
