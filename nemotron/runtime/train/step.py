"""One training step of the shared loop: Megatron's forward-backward schedule and the optimizer.

Follows Megatron-LM's examples/run_simple_mcore_train_loop.py: get_forward_backward_func with the
stage's forward_step (returning (output, partial(loss_func, loss_mask))), then optimizer.step and the
scheduler. The learning rate advances before the step, so step k trains with lr(k).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterator, Tuple

import torch
import torch.distributed as dist

from nemotron.runtime import cpu_compat
from nemotron.runtime.train.records import StepRecord


def loss_func(loss_mask: torch.Tensor, output_tensor: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, dict]:
    """Masked token-loss sum, token count, and the pair for reporting (Megatron's 3-tuple form)."""
    losses = output_tensor.float().view(-1)
    mask = loss_mask.float().view(-1)
    loss = torch.sum(losses * mask)
    num_tokens = mask.sum().to(torch.int)
    return loss, num_tokens, {"lm loss": torch.stack([loss.detach(), num_tokens.float()])}


def forward_step(data_iterator: Iterator, model: Any) -> Tuple[torch.Tensor, Callable]:
    """One micro-batch forward; the schedule calls the returned loss function on its output."""
    from megatron.core import parallel_state
    from megatron.core.utils import get_batch_on_this_cp_rank

    batch = next(data_iterator)
    if torch.cuda.is_available():
        batch = {k: v.cuda(non_blocking=True) for k, v in batch.items()}
    if parallel_state.get_context_parallel_world_size() > 1:
        batch = get_batch_on_this_cp_rank(batch)
    output = model(batch["tokens"], batch["position_ids"], batch.get("attention_mask"), labels=batch["labels"])
    return output, partial(loss_func, batch["loss_mask"])


def run_schedule(run: Any, data_iter: Iterator, forward_only: bool) -> float:
    """Forward(-backward) over one global batch; the loss averaged over all ranks' tokens."""
    from megatron.core.pipeline_parallel import get_forward_backward_func

    losses = get_forward_backward_func()(
        forward_step_func=run.stage.forward_step,
        data_iterator=data_iter,
        model=run.model,
        num_microbatches=run.num_microbatches,
        seq_length=run.cfg.model.seq_length,
        micro_batch_size=run.cfg.train.micro_batch_size,
        forward_only=forward_only,
    )
    # Only the last pipeline stage has losses; TP/CP copies scale both sums alike.
    total = torch.zeros(2, dtype=torch.float64)
    for item in losses:
        total += item["lm loss"].detach().double().cpu()
    if torch.cuda.is_available():
        total = total.cuda()
    dist.all_reduce(total)
    return float(total[0] / total[1].clamp(min=1))


def optimizer_step(run: Any) -> float:
    """The optimizer's step on the gradients the schedule accumulated; the grad norm (nan if none)."""
    with cpu_compat.cuda_as_cpu():
        _, grad_norm, _ = run.optimizer.step()
    return float(grad_norm) if grad_norm is not None else float("nan")


def train_step(run: Any) -> StepRecord:
    """One optimizer step over a global batch of `run.train_iter`."""
    run.model.zero_grad_buffer()
    run.optimizer.zero_grad()
    # Advance the schedule first, so step k trains with lr(k): no wasted step at lr 0 in warmup.
    run.scheduler.step(increment=1)
    lr = run.optimizer.param_groups[0]["lr"]
    loss = run_schedule(run, run.train_iter, forward_only=False)
    return StepRecord(loss=loss, lr=lr, grad_norm=optimizer_step(run))


def evaluate(run: Any) -> float:
    """Mean validation loss over `train.eval_iters` global batches."""
    run.model.eval()
    with torch.no_grad():
        losses = [run_schedule(run, run.valid_iter, forward_only=True) for _ in range(run.cfg.train.eval_iters)]
    run.model.train()
    return sum(losses) / len(losses)
