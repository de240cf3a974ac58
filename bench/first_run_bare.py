"""The baseline of bench/first_run.py: a bare script that imports torch and Megatron-Core and trains.

    python bench/first_run_bare.py <run_dir>/config.yaml

It trains the model that resolved config describes for its `train.steps` on its (already prepared)
data, the plain way: one process, gloo, Megatron's DDP wrapper, `get_megatron_optimizer`,
`get_forward_backward_func`, same seed, threads and micro-batches. The model comes from
`nemotron.runtime.model.build.build_model`, which is Megatron-Core's own GPTModel/MambaModel with its
local layer spec (and, on CPU, the pure-PyTorch Mamba-2 mixer, since Megatron's needs the GPU
kernels). No Hydra, no launcher process, no tracker, no checkpoint, no progress lines: what a
first run cannot do without. Prints the last loss (it must equal the main command's).
"""

from __future__ import annotations

import os
import socket
import sys
from functools import partial

import torch
import torch.distributed as dist
from omegaconf import OmegaConf

from nemotron.runtime import cpu_compat
from nemotron.runtime.data import gpt as data
from nemotron.runtime.model.build import build_model


def loss_func(loss_mask, output):
    mask = loss_mask.view(-1).float()
    loss = torch.sum(output.float().view(-1) * mask)
    count = mask.sum().to(torch.int)
    return loss, count, {"lm loss": torch.stack([loss.detach(), count.float()])}


def forward_step(batches, model):
    batch = next(batches)
    output = model(batch["tokens"], batch["position_ids"], batch.get("attention_mask"), labels=batch["labels"])
    return output, partial(loss_func, batch["loss_mask"])


def lr_schedule(optimizer, o, steps):
    """The recipe's warmup + decay (its `optim` section), so both sides take the same steps."""
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

    low = o.min_lr if o.min_lr is not None else o.lr / 10
    return OptimizerParamScheduler(
        optimizer,
        init_lr=0.0,
        max_lr=o.lr,
        min_lr=low,
        lr_warmup_steps=min(o.warmup_steps, steps - 1),
        lr_decay_steps=steps,
        lr_decay_style=str(o.decay_style),
        start_wd=o.weight_decay,
        end_wd=o.weight_decay,
        wd_incr_steps=steps,
        wd_incr_style="constant",
        wsd_decay_steps=o.wsd_decay_steps or max(1, steps // 5),
        lr_wsd_decay_style="linear",
    )


def train(cfg) -> float:
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig, finalize_model_grads
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
    from megatron.core.pipeline_parallel import get_forward_backward_func

    tokenizer, prefixes, weights = data.resolve_data(cfg.data)
    train_ds, _ = data.build_datasets(cfg, tokenizer, prefixes, weights)
    cpu_compat.seed_model_parallel(cfg.train.seed)
    model, config = build_model(cfg, tokenizer.vocab_size)
    model = DistributedDataParallel(
        config=config,
        module=model,
        ddp_config=DistributedDataParallelConfig(
            grad_reduce_in_fp32=True, overlap_grad_reduce=False, use_distributed_optimizer=False
        ),
    )
    config.no_sync_func, config.finalize_model_grads_func = model.no_sync, finalize_model_grads
    o = cfg.optim
    with cpu_compat.cuda_as_cpu():
        optimizer = get_megatron_optimizer(
            OptimizerConfig(
                optimizer="adam",
                lr=o.lr,
                min_lr=o.min_lr if o.min_lr is not None else o.lr / 10,
                weight_decay=o.weight_decay,
                adam_beta1=o.adam_beta1,
                adam_beta2=o.adam_beta2,
                adam_eps=o.adam_eps,
                clip_grad=o.clip_grad,
            ),
            [model],
        )
    t = cfg.train
    scheduler = lr_schedule(optimizer, o, t.steps)
    batches = data.batch_iterator(train_ds, t.micro_batch_size, 0, 1)
    loss = float("nan")
    for _ in range(t.steps):
        model.zero_grad_buffer()
        optimizer.zero_grad()
        scheduler.step(increment=1)
        out = get_forward_backward_func()(
            forward_step_func=forward_step,
            data_iterator=batches,
            model=model,
            num_microbatches=t.global_batch_size // t.micro_batch_size,
            seq_length=cfg.model.seq_length,
            micro_batch_size=t.micro_batch_size,
            forward_only=False,
        )
        with cpu_compat.cuda_as_cpu():
            optimizer.step()
        total = sum(x["lm loss"] for x in out)
        loss = float(total[0] / total[1])
    return loss


def main() -> None:
    from megatron.core import parallel_state

    cfg = OmegaConf.load(sys.argv[1])
    torch.set_num_threads(cfg.train.num_threads or len(os.sched_getaffinity(0)))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    parallel_state.initialize_model_parallel(1, 1)
    cpu_compat.install()
    print(f"last loss {train(cfg):.4f}", flush=True)


if __name__ == "__main__":
    main()
