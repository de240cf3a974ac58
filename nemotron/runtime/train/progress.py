"""What rank 0 prints: one progress line per `train.log_interval` steps and the run's summary line."""

from __future__ import annotations

import datetime
from typing import Any, Optional

import torch.distributed as dist

from nemotron.runtime.train import preemption


def rank() -> int:
    """This process's global rank (0 before the process group exists)."""
    return dist.get_rank() if dist.is_initialized() else 0


def say(text: str, on_rank: Optional[int] = None) -> None:
    """Print `text` on rank 0 (of `on_rank`, or of the initialised process group)."""
    if (rank() if on_rank is None else on_rank) == 0:
        print(text, flush=True)


def progress_line(
    step: int, steps: int, loss: float, lr: float, grad_norm: float, tokens_per_s: float, eta_s: float
) -> str:
    """`step k/N | loss ... | lr ... | grad norm ... | N tokens/s | ETA h:mm:ss`."""
    eta = datetime.timedelta(seconds=int(max(0.0, eta_s)))
    return (
        f"step {step}/{steps} | loss {loss:.4f} | lr {lr:.2e} | grad norm {grad_norm:.3f} | "
        f"{tokens_per_s:,.0f} tokens/s | ETA {eta}"
    )


def summary_line(cfg: Any, info: Any, result: Any, error: Optional[BaseException], phase: str) -> str:
    """`done | ...`, `stopped at step N (SIGUSR2) | ...` or `FAILED ... | ...`: how the run ended."""
    p = cfg.parallel
    layout = (
        f"TP{p.tensor_model_parallel_size} PP{p.pipeline_model_parallel_size} "
        f"CP{p.context_parallel_size} EP{p.expert_model_parallel_size}"
    )
    if info is not None:
        layout = f"world {info.world_size} ({layout} DP{info.data_parallel_size})"
    losses, done = result.losses, result.start_step + len(result.losses)
    loss = f"loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "no loss"
    where = f"at step {done + 1}" if phase == "train" else "during setup"
    head = "done" if error is None else f"FAILED {where}: {type(error).__name__}: {error}"
    if isinstance(error, preemption.Preempted):
        head = f"stopped at step {done} ({error.signal_name})"
    resumed = f" (resumed at {result.start_step})" if result.start_step else ""
    return (
        f"{head} | {done}/{cfg.train.steps} steps{resumed} in {result.wall_s:.1f} s | {loss} | "
        f"{result.tokens_per_s:,.0f} tokens/s | {layout}"
    )
