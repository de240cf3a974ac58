"""The shared training loop every stage runs: `run(cfg, stage)`.

distributed init -> checkpoint to resume from -> tracker -> `setup` (the stage's datasets, model,
DDP, optimizer, resume) -> steps (`stage.train_step`, one `StepRecord` each: tracker, the first with
the trainable and total parameters of `param_counts`, progress line, `TrainResult`) with validation
and checkpoints when due -> summary line. SIGUSR2/SIGTERM (Slurm's time limit and preemption) stop
the run at the next step boundary with a checkpoint and exit status 75 (`preemption`). Rank 0
prints one progress line per `train.log_interval` and always a final summary line.
"""

from __future__ import annotations

import os
import time
from typing import Any

from nemotron.runtime.checkpoint.checkpointer import Checkpointer
from nemotron.runtime.train import distributed, flops, param_counts, preemption, step
from nemotron.runtime.train.contract import Stage
from nemotron.runtime.train.progress import progress_line, say, summary_line
from nemotron.runtime.train.records import StepRecord, TrainResult
from nemotron.runtime.train.setup import Run, setup
from nemotron.tracking import open_tracker


def _eval_and_save(run: Run, tracker: Any, result: TrainResult, step_no: int) -> float:
    """Validation and checkpoint after `step_no` when due; the seconds they took (not training)."""
    cfg, pos, start = run.cfg, run.position, time.perf_counter()
    evaluate_now = cfg.train.eval_interval > 0 and step_no % cfg.train.eval_interval == 0
    save_now = run.checkpointer.save_due(step_no)
    if not (evaluate_now or save_now):
        return 0.0
    if evaluate_now:
        result.val_losses[step_no] = val = step.evaluate(run)
        pos.consumed_valid_samples += cfg.train.eval_iters * cfg.train.global_batch_size
        tracker.log(step_no, {"val_loss": val})
        say(f"step {step_no}/{cfg.train.steps} | validation loss {val:.4f}", run.info.rank)
    if save_now:
        run.checkpointer.save(run, tracker)
    return time.perf_counter() - start


def _record(result: TrainResult, record: StepRecord) -> None:
    result.losses.append(record.loss)
    if record.extra:
        result.stage_metrics.append(dict(record.extra))


def _loop(run: Run, tracker: Any, result: TrainResult, signals: preemption.StopSignals, once: Any = None) -> None:
    """The steps; `once` (the parameter counts) goes out with the first step's metrics."""
    cfg, rank, pos = run.cfg, run.info.rank, run.position
    steps, tokens_per_step = cfg.train.steps, cfg.train.global_batch_size * cfg.model.seq_length
    start = prev = mark = time.perf_counter()
    first, first_step_s, paused_s, stopped = pos.step, 0.0, 0.0, None
    window, later, total = 0, 0, 0  # tokens: since the last progress line, after the first step, all
    for step_no in range(first + 1, steps + 1):
        stopped = preemption.agreed_signal(signals, run.info.world_size)
        if stopped is not None:  # a signal since the last step (or during setup): stop here
            break
        record = run.stage.train_step(run)
        now = time.perf_counter()
        tokens = tokens_per_step if record.tokens is None else record.tokens
        window, later, total = window + tokens, later + (tokens if first_step_s else 0), total + tokens
        first_step_s = first_step_s or now - start
        _record(result, record)
        pos.step = step_no
        pos.consumed_train_samples += cfg.train.global_batch_size
        figures = {"loss": record.loss, "lr": record.lr, "grad_norm": record.grad_norm}
        tracker.log(step_no, {**figures, "tokens_per_s": tokens / (now - prev), **record.extra, **(once or {})})
        once = None
        prev = now
        if step_no % cfg.train.log_interval == 0 or step_no == steps:
            rate = window / (now - mark)
            eta = (now - start) / (step_no - first) * (steps - step_no)
            text, perf = flops.perf_text(run, rate)
            line = progress_line(step_no, steps, record.loss, record.lr, record.grad_norm, rate, eta) + text
            for shown in run.stage.progress_lines(line, step_no, steps, record):
                say(shown, rank)
            if perf:
                tracker.log(step_no, perf)
            mark, window = now, 0
        spent = _eval_and_save(run, tracker, result, step_no)
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
        saved = run.checkpointer.save_due(pos.step)
        raise preemption.stop(run, tracker, stopped, first, saved=saved)


def run(cfg: Any, stage: Stage) -> TrainResult:
    """Train `cfg.train.steps` steps of `stage` on the model `cfg` describes; the per-step losses.

    Resumes from the latest complete checkpoint in `checkpoint.dir` (or `checkpoint.load_dir`)
    when there is one; `losses` then holds only the steps run here. Rank 0 always ends with a
    summary line (`done | ...`, `stopped at step N (SIGUSR2) | ...` or `FAILED ... | ...`); the
    tracker is closed with FINISHED, KILLED (stopped by a signal: `preemption.Preempted` is raised)
    or FAILED, and the process groups are torn down either way.
    """
    cfg = stage.resolve_inputs(cfg)
    with preemption.StopSignals() as signals:  # until the tracker is closed and the groups are gone
        return _run(cfg, signals, stage)


def _run(cfg: Any, signals: preemption.StopSignals, stage: Stage) -> TrainResult:
    result = TrainResult(losses=[], tokens_per_s=0.0, steps=0)
    info, tracker, phase, error = None, None, "setup", None
    try:
        info = distributed.init(cfg)
        if info.rank == 0:
            preemption.clear_mark(cfg.run_dir)
        checkpointer = Checkpointer(cfg)
        tracker = open_tracker(checkpointer.tracker_config(), info.rank)
        state = setup(cfg, info, stage, checkpointer)
        result.start_step = state.position.step
        counts = param_counts.counts(state.model)  # trainable vs total parameters (a collective: every rank)
        phase = "train"
        _loop(state, tracker, result, signals, counts)
        result.steps = len(result.losses)
        return result
    except BaseException as err:
        error = err
        raise
    finally:
        rank = info.rank if info is not None else int(os.environ.get("RANK", 0))
        say(summary_line(cfg, info, result, error, phase), rank)
        if tracker is not None:
            stopped = isinstance(error, preemption.Preempted)
            tracker.close("FINISHED" if error is None else "KILLED" if stopped else "FAILED")
        if isinstance(error, preemption.Preempted):
            distributed.barrier()  # all ranks agreed to stop: leave together, after rank 0 closed its tracker
        distributed.teardown()
