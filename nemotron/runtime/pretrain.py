"""The pretraining loop: a thin Megatron-Core loop driven by a resolved run config.

`run(cfg)` is what both recipe scripts call. It follows Megatron-LM's
examples/run_simple_mcore_train_loop.py: distributed init -> model -> Megatron
DistributedDataParallel -> get_megatron_optimizer -> OptimizerParamScheduler ->
get_forward_backward_func(forward_step_func returning (output, partial(loss_func, loss_mask)))
-> optimizer.step -> scheduler. CPU quirks live in `cpu_compat`, data in `data`, the model in
`model`, the optimizer and DDP wrapper in `optim`, checkpoints (save every `checkpoint.save_interval` steps and at the end, auto-resume) in
`checkpoint`. Rank 0 prints one progress line per `train.log_interval` and always a final summary
line; metrics go through `nemotron.tracking.open_tracker`. SIGUSR2/SIGTERM (Slurm's time limit and
preemption) stop the run at the next step boundary with a checkpoint and exit status 75: `preemption`.
"""

from __future__ import annotations

import datetime
import os
import random
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist

from nemotron.runtime import checkpoint, cpu_compat, data, distributed, flops, optim, preemption
from nemotron.runtime.model import build_model
from nemotron.tracking import open_tracker


@dataclass
class TrainResult:
    """What a finished run reports back (identical on every rank)."""

    losses: List[float]
    """Training loss of each step, averaged over data-parallel ranks and micro-batches."""
    tokens_per_s: float
    """Global training throughput, steps after the first (evaluation and saving excluded)."""
    steps: int
    """Optimizer steps run."""
    val_losses: Dict[int, float] = field(default_factory=dict)
    """Validation loss by step (when train.eval_interval > 0)."""
    wall_s: float = 0.0
    """Seconds from the first step to the last."""
    start_step: int = 0
    """Steps already done when this run began (resumed from a checkpoint); losses[0] is step
    start_step + 1."""
    stage_metrics: List[Dict[str, float]] = field(default_factory=list)
    """The stage's own metrics of each step (DPO's rewards, GRPO's), beside `losses` (empty for
    stages without any)."""


@dataclass
class _Run:
    """Everything the loop needs, built once by `_setup`."""

    cfg: Any
    info: distributed.DistInfo
    model: Any
    optimizer: Any
    scheduler: Any
    train_iter: Iterator
    valid_iter: Optional[Iterator]
    num_microbatches: int
    position: checkpoint.Position
    """Steps done and samples consumed so far (what a checkpoint saves)."""
    flops_per_token: Optional[float] = None
    """Model FLOPs per token on this rank (GPU only: for TFLOP/s and MFU)."""
    peak_tflops: Optional[float] = None
    """The GPU's dense bf16 peak, when known."""
    forward_step: Optional[Callable] = None
    """The stage's micro-batch forward (Megatron's forward_step_func)."""
    train_step: Optional[Callable] = None
    """The stage's optimizer step (`Stage.train_step`); None: `train_step` below."""
    state: Dict[str, Any] = field(default_factory=dict)
    """What the stage's `prepare` built (e.g. a frozen reference model)."""
    shown: Tuple[str, ...] = ()
    """Keys of `metrics` shown on the progress line (`Stage.shown`)."""
    metrics: Dict[str, float] = field(default_factory=dict)
    """The stage's own metrics of the step just trained (the same on every rank), set by its
    train_step (emptied before each step): logged with the loss and kept in
    `TrainResult.stage_metrics`; key `tokens` (popped) replaces global_batch_size x seq_length in
    the step's throughput."""


def _num_threads(cfg: Any, info: distributed.DistInfo) -> int:
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


def _set_seed(seed: int) -> None:
    from megatron.core import parallel_state

    seed = seed + 100 * parallel_state.get_pipeline_model_parallel_rank()
    random.seed(seed)
    np.random.seed(seed)
    cpu_compat.seed_model_parallel(seed)


def pretrain_datasets(cfg: Any, attention_mask: bool) -> Tuple[Any, Any, Optional[Any]]:
    """(tokenizer, train, valid or None): the GPT datasets `cfg.data` names."""
    tokenizer, prefixes, weights = data.resolve_data(cfg.data)
    train_ds, valid_ds = data.build_datasets(cfg, tokenizer, prefixes, weights,
                                             create_attention_mask=attention_mask)
    return tokenizer, train_ds, valid_ds


@dataclass(frozen=True)
class Stage:
    """What a training stage (pretrain, SFT) changes in the shared loop."""

    name: str
    """Shown in logs: `pretrain`, `sft`."""
    datasets: Callable[[Any, bool], Tuple[Any, Any, Optional[Any]]] = pretrain_datasets
    """(cfg, build attention masks) -> (tokenizer, train dataset, valid dataset or None)."""
    forward_step: Optional[Callable] = None
    """The micro-batch forward (Megatron's forward_step_func); None: `forward_step` below."""
    configure: Optional[Callable[[Any, Any], None]] = None
    """(cfg, TransformerConfig) -> None, before DDP wraps the model."""
    init_weights: Optional[Callable[[Any, Any], None]] = None
    """(cfg, model) -> None on a fresh start (not on resume), before DDP and the optimizer."""
    shown: Tuple[str, ...] = ()
    """Keys of the stage's metrics (`_Run.metrics`, set by its train_step) that the loop's
    progress line shows after the loss (DPO: reward margins and accuracies)."""
    prepare: Optional[Callable[[Any, Any], Dict[str, Any]]] = None
    """(cfg, train dataset) -> `_Run.state`, fresh start or resume, before a checkpoint is loaded."""
    train_step: Optional[Callable[[Any], Tuple[float, float, float]]] = None
    """(run) -> (loss, lr, grad norm) of one step; None: the pretraining `train_step`."""


def _setup(cfg: Any, info: distributed.DistInfo, found: Optional[checkpoint.Found],
           stage: "Stage") -> _Run:
    from megatron.core import parallel_state

    torch.set_num_threads(_num_threads(cfg, info))
    cpu_compat.install()
    n_micro = num_microbatches(cfg.train, info.data_parallel_size)
    tokenizer, train_ds, valid_ds = stage.datasets(cfg, cpu_compat.on_cpu())
    _set_seed(cfg.train.seed)
    model, config = build_model(cfg, tokenizer.vocab_size)
    gpu_flops, peak = flops.gpu_flops(cfg, model, tokenizer.vocab_size)
    if stage.configure is not None:
        stage.configure(cfg, config)
    if found is None and stage.init_weights is not None:
        stage.init_weights(cfg, model)
    state = stage.prepare(cfg, train_ds) if stage.prepare is not None else {}
    model = optim.wrap_ddp(cfg, model, config)
    optimizer, scheduler = optim.build_optimizer(cfg, model)
    config.grad_scale_func = optimizer.scale_loss
    position = checkpoint.Position()
    if found is not None:  # restores RNG states too: nothing after this may draw random numbers
        position = checkpoint.load(found, cfg, model, optimizer, scheduler)
    dp_rank, dp = parallel_state.get_data_parallel_rank(), info.data_parallel_size
    mbs = cfg.train.micro_batch_size
    train_iter = data.batch_iterator(train_ds, mbs, dp_rank, dp, position.consumed_train_samples)
    valid_iter = (data.batch_iterator(valid_ds, mbs, dp_rank, dp, position.consumed_valid_samples)
                  if valid_ds is not None else None)
    return _Run(cfg, info, model, optimizer, scheduler, train_iter, valid_iter, n_micro, position,
                gpu_flops, peak, stage.forward_step or forward_step, stage.train_step, state, stage.shown)


# ---- one step ------------------------------------------------------------------------------------


def loss_func(loss_mask: torch.Tensor,
              output_tensor: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, dict]:
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
    output = model(batch["tokens"], batch["position_ids"], batch.get("attention_mask"),
                   labels=batch["labels"])
    return output, partial(loss_func, batch["loss_mask"])


def _run_schedule(run: _Run, data_iter: Iterator, forward_only: bool) -> float:
    """Forward(-backward) over one global batch; the loss averaged over all ranks' tokens."""
    from megatron.core.pipeline_parallel import get_forward_backward_func

    losses = get_forward_backward_func()(
        forward_step_func=run.forward_step, data_iterator=data_iter, model=run.model,
        num_microbatches=run.num_microbatches, seq_length=run.cfg.model.seq_length,
        micro_batch_size=run.cfg.train.micro_batch_size, forward_only=forward_only,
    )
    # Only the last pipeline stage has losses; TP/CP copies scale both sums alike.
    total = torch.zeros(2, dtype=torch.float64)
    for item in losses:
        total += item["lm loss"].detach().double().cpu()
    if torch.cuda.is_available():
        total = total.cuda()
    dist.all_reduce(total)
    return float(total[0] / total[1].clamp(min=1))


def train_step(run: _Run) -> Tuple[float, float, float]:
    """One optimizer step: (loss, learning rate used, grad norm)."""
    run.model.zero_grad_buffer()
    run.optimizer.zero_grad()
    # Advance the schedule first, so step k trains with lr(k): no wasted step at lr 0 in warmup.
    run.scheduler.step(increment=1)
    lr = run.optimizer.param_groups[0]["lr"]
    loss = _run_schedule(run, run.train_iter, forward_only=False)
    with cpu_compat.cuda_as_cpu():
        _, grad_norm, _ = run.optimizer.step()
    return loss, lr, float(grad_norm) if grad_norm is not None else float("nan")


def evaluate(run: _Run) -> float:
    """Mean validation loss over `train.eval_iters` global batches."""
    run.model.eval()
    with torch.no_grad():
        losses = [_run_schedule(run, run.valid_iter, forward_only=True)
                  for _ in range(run.cfg.train.eval_iters)]
    run.model.train()
    return sum(losses) / len(losses)


PRETRAIN = Stage("pretrain")
"""The pretraining stage: GPT datasets, every token in the loss, weights from the seed."""


# ---- the loop ------------------------------------------------------------------------------------


def _say(rank: int, text: str) -> None:
    if rank == 0:
        print(text, flush=True)


def _progress_line(step: int, steps: int, loss: float, lr: float, grad_norm: float,
                   tokens_per_s: float, eta_s: float) -> str:
    eta = datetime.timedelta(seconds=int(max(0.0, eta_s)))
    return (f"step {step}/{steps} | loss {loss:.4f} | lr {lr:.2e} | grad norm {grad_norm:.3f} | "
            f"{tokens_per_s:,.0f} tokens/s | ETA {eta}")


def _save_due(cfg: Any, step: int) -> bool:
    ck = cfg.checkpoint
    return (ck.save_interval > 0 and step % ck.save_interval == 0) or (
        ck.save_at_end and step == cfg.train.steps)


def _eval_and_save(run: _Run, tracker: Any, result: TrainResult, step: int) -> float:
    """Validation and checkpoint after `step` when due; the seconds they took (not training)."""
    cfg, pos, start = run.cfg, run.position, time.perf_counter()
    evaluate_now = cfg.train.eval_interval > 0 and step % cfg.train.eval_interval == 0
    if not (evaluate_now or _save_due(cfg, step)):
        return 0.0
    if evaluate_now:
        result.val_losses[step] = val = evaluate(run)
        pos.consumed_valid_samples += cfg.train.eval_iters * cfg.train.global_batch_size
        tracker.log(step, {"val_loss": val})
        _say(run.info.rank, f"step {step}/{cfg.train.steps} | validation loss {val:.4f}")
    if _save_due(cfg, step):
        checkpoint.save(cfg, run.model, run.optimizer, run.scheduler, pos, tracker)
    return time.perf_counter() - start


def _loop(run: _Run, tracker: Any, result: TrainResult, signals: preemption.StopSignals) -> None:
    cfg, rank, pos = run.cfg, run.info.rank, run.position
    steps, tokens_per_step = cfg.train.steps, cfg.train.global_batch_size * cfg.model.seq_length
    start = prev = mark = time.perf_counter()
    first, first_step_s, paused_s, stopped = pos.step, 0.0, 0.0, None
    window, later, total = 0, 0, 0  # tokens: since the last progress line, after the first step, all
    for step in range(first + 1, steps + 1):
        stopped = preemption.agreed_signal(signals, run.info.world_size)
        if stopped is not None:  # a signal since the last step (or during setup): stop here
            break
        run.metrics = {}
        loss, lr, grad_norm = (run.train_step or train_step)(run)
        now = time.perf_counter()
        extra = dict(run.metrics)
        tokens = extra.pop("tokens", tokens_per_step)
        window, later, total = window + tokens, later + (tokens if first_step_s else 0), total + tokens
        first_step_s = first_step_s or now - start
        result.losses.append(loss)
        if extra:
            result.stage_metrics.append(extra)
        pos.step = step
        pos.consumed_train_samples += cfg.train.global_batch_size
        tracker.log(step, {"loss": loss, "lr": lr, "grad_norm": grad_norm,
                           "tokens_per_s": tokens / (now - prev), **extra})
        prev = now
        if step % cfg.train.log_interval == 0 or step == steps:
            rate = window / (now - mark)
            eta = (now - start) / (step - first) * (steps - step)
            text, perf = flops.perf_text(run, rate)
            text += "".join(f" | {k} {extra[k]:.3f}" for k in run.shown if k in extra)
            _say(rank, _progress_line(step, steps, loss, lr, grad_norm, rate, eta) + text)
            if perf:
                tracker.log(step, perf)
            mark, window = now, 0
        spent = _eval_and_save(run, tracker, result, step)
        if spent:  # keep evaluation and saving out of the throughput
            prev = mark = time.perf_counter()
            paused_s, window = paused_s + spent, 0
    result.wall_s = time.perf_counter() - start
    later_s, done = result.wall_s - first_step_s - paused_s, len(result.losses)
    if done > 1 and later_s > 0:
        result.tokens_per_s = later / later_s
    else:
        result.tokens_per_s = total / max(result.wall_s, 1e-9)
    if stopped is not None:
        raise preemption.stop(run, tracker, stopped, first, saved=_save_due(cfg, pos.step))


def _summary(cfg: Any, info: Optional[distributed.DistInfo], result: TrainResult,
             error: Optional[BaseException], stage: str) -> str:
    p = cfg.parallel
    layout = (f"TP{p.tensor_model_parallel_size} PP{p.pipeline_model_parallel_size} "
              f"CP{p.context_parallel_size} EP{p.expert_model_parallel_size}")
    if info is not None:
        layout = f"world {info.world_size} ({layout} DP{info.data_parallel_size})"
    losses, done = result.losses, result.start_step + len(result.losses)
    loss = f"loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "no loss"
    where = f"at step {done + 1}" if stage == "train" else "during setup"
    head = "done" if error is None else f"FAILED {where}: {type(error).__name__}: {error}"
    if isinstance(error, preemption.Preempted):
        head = f"stopped at step {done} ({error.signal_name})"
    resumed = f" (resumed at {result.start_step})" if result.start_step else ""
    return (f"{head} | {done}/{cfg.train.steps} steps{resumed} in {result.wall_s:.1f} s | {loss} | "
            f"{result.tokens_per_s:,.0f} tokens/s | {layout}")


def run(cfg: Any, stage: Optional[Stage] = None) -> TrainResult:
    """Train `cfg.train.steps` steps of the model `cfg` describes; returns the per-step losses.

    Resumes from the latest complete checkpoint in `checkpoint.dir` (or `checkpoint.load_dir`)
    when there is one; `losses` then holds only the steps run here. Rank 0 always ends with a
    summary line (`done | ...`, `stopped at step N (SIGUSR2) | ...` or `FAILED ... | ...`); the
    tracker is closed with FINISHED, KILLED (stopped by a signal: `preemption.Preempted` is raised)
    or FAILED, and the process groups are torn down either way.
    """
    with preemption.StopSignals() as signals:  # until the tracker is closed and the groups are gone
        return _run(cfg, signals, stage or PRETRAIN)


def _run(cfg: Any, signals: preemption.StopSignals, stage: Stage) -> TrainResult:
    result = TrainResult(losses=[], tokens_per_s=0.0, steps=0)
    info, tracker, phase, error = None, None, "setup", None
    try:
        info = distributed.init(cfg)
        if info.rank == 0:
            preemption.clear_mark(cfg.run_dir)
        found = checkpoint.find_resume(cfg)
        tracker = open_tracker(checkpoint.tracker_config(cfg, found), info.rank)
        state = _setup(cfg, info, found, stage)
        result.start_step = state.position.step
        phase = "train"
        _loop(state, tracker, result, signals)
        result.steps = len(result.losses)
        return result
    except BaseException as err:
        error = err
        raise
    finally:
        rank = info.rank if info is not None else int(os.environ.get("RANK", 0))
        _say(rank, _summary(cfg, info, result, error, phase))
        if tracker is not None:
            stopped = isinstance(error, preemption.Preempted)
            tracker.close("FINISHED" if error is None else "KILLED" if stopped else "FAILED")
        if isinstance(error, preemption.Preempted):
            distributed.barrier()  # all ranks agreed to stop: leave together, after rank 0 closed its tracker
        distributed.teardown()
