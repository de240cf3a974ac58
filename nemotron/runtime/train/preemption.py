"""Save-on-signal: stop training at a step boundary when Slurm announces a time limit or preemption.

Slurm sends SIGUSR2 ahead of the time limit (`#SBATCH --signal=USR2@<seconds>`) and SIGTERM on
preemption or `scancel`, to every rank. `train.loop.run` holds `StopSignals` for the whole run (setup
included), whose handler only records the first signal: no I/O, and the step in flight finishes.
Before each step `agreed_signal` asks whether any rank got one (an all_reduce MAX of one integer when
there are several ranks, so all stop at the same step even if only one was signalled). `stop` then
saves a checkpoint of the last finished step (unless its regular save just did), rank 0 prints

    preempted | SIGUSR2 at step 12/200: checkpoint saved in 0.4 s; exiting with 75 so the job can be requeued and resume

and the run ends with `Preempted`, a SystemExit carrying `exit_codes.PREEMPTED`; the recipe script
exits with it, the Slurm batch script requeues the job, and the requeued run resumes from that
checkpoint. A signal during setup stops the run before its first step, with nothing new to save.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Dict, Optional, Sequence

import torch
import torch.distributed as dist

from nemotron.common import exit_codes
from nemotron.common.atomic_files import write_json_atomic

SIGNALS = (signal.SIGUSR2, signal.SIGTERM)
"""What Slurm sends before a time limit (`--signal=USR2@...`) and on preemption or scancel."""


class Preempted(SystemExit):
    """The run stopped on a signal at a step boundary; its exit status is `exit_codes.PREEMPTED`."""

    def __init__(self, signal_name: str, step: int) -> None:
        super().__init__(exit_codes.PREEMPTED)
        self.signal_name, self.step = signal_name, step


class StopSignals:
    """While entered, records the first of `signals` instead of dying; then restores the previous
    handlers. Handlers can only be installed from the main thread: elsewhere this records nothing."""

    def __init__(self, signals: Sequence[int] = SIGNALS) -> None:
        self.signals = tuple(signals)
        self.received = 0
        """The first signal's number; 0 while none came."""
        self._previous: Dict[int, Any] = {}

    def _record(self, signum: int, frame: Optional[FrameType]) -> None:
        if not self.received:
            self.received = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self._previous.items():  # None: set outside Python, default is closest
            signal.signal(sig, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()


def agreed_signal(signals: StopSignals, world_size: int) -> Optional[signal.Signals]:
    """The signal any rank received (the highest number if they differ), or None; with several ranks
    a collective that every rank calls at the same step (one 1-element all_reduce)."""
    received = signals.received
    if world_size > 1:
        device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else None
        flag = torch.tensor([received], dtype=torch.int32, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        received = int(flag.item())
    return signal.Signals(received) if received else None


def marker_path(run_dir: Any) -> Path:
    """Where rank 0 says "stopped by a signal, checkpoint complete" for the batch script."""
    return Path(str(run_dir)) / exit_codes.PREEMPTED_MARKER


def mark(run_dir: Any, sig_name: str, step: int) -> None:
    """Write the marker (after the checkpoint is complete, before any rank exits)."""
    path = marker_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"signal": sig_name, "step": step}, indent=None)


def clear_mark(run_dir: Any) -> None:
    """A new attempt starts: an old marker must not make a later failure look like a preemption."""
    marker_path(run_dir).unlink(missing_ok=True)


def stop(run: Any, tracker: Any, sig: signal.Signals, first_step: int, saved: bool) -> Preempted:
    """Save a checkpoint of the last finished step (all ranks: the save is collective) unless it is
    `saved` already or no step ran since `first_step`; rank 0 says so; the exception ending the run."""
    cfg, pos, start = run.cfg, run.position, time.perf_counter()
    if pos.step == first_step:
        what = "no step trained since setup, nothing new to save"
    elif saved:
        what = "this step's checkpoint is already saved"
    else:
        run.checkpointer.save(run, tracker)
        what = f"checkpoint saved in {time.perf_counter() - start:.1f} s"
    then = "resume" if cfg.checkpoint.resume else "start over (checkpoint.resume=false)"
    if run.info.rank == 0:
        mark(cfg.run_dir, sig.name, pos.step)
        print(
            f"preempted | {sig.name} at step {pos.step}/{cfg.train.steps}: {what}; exiting with "
            f"{exit_codes.PREEMPTED} so the job can be requeued and {then}",
            flush=True,
        )
    return Preempted(sig.name, pos.step)
