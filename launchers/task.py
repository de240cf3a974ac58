"""What submitit pickles and runs on every rank of a job: `RankTask`, a few paths and a command.

The task holds the member's run dir (config.yaml resolved at submit, train.log, checkpoints) and the
recipe command in the code snapshot; never a config or a Hydra object. srun starts submitit's job
runner on each rank (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR already exported by the batch script);
the runner unpickles this task and calls it: the recipe runs as a child process, its output appended
to `<run_dir>/train.log`. A recipe that fails makes the task raise, so submitit records the error and
the job is FAILED in sacct.

Requeue follows submitit's checkpoint protocol. Slurm's `SIGUSR2` (the time limit is near, or
`scancel --signal=USR2`) reaches every process of the job step; each recipe rank stops at the same
step, the run saves a checkpoint, rank 0 leaves `preempted.json` and the ranks exit 75. On global rank 0
submitit's handler calls `checkpoint()`, which waits for that, and returns this task again, then submitit
requeues the job (`<array>_<task>` for a sweep member) within `max_num_timeout`; the requeued job runs
the same task in the same run dir and the recipe resumes from the checkpoint (same MLflow run).
`SIGTERM` alone (scancel; a preemption Slurm requeues itself) stops the recipe the same way, after a
checkpoint, and the task exits 75 without requeueing: a cancelled job stays cancelled.
Standard library only (submitit is imported inside the job).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from nemotron.common.exit_codes import PREEMPTED, PREEMPTED_MARKER

POLL_S = 0.2
"""How often the task looks at its recipe process."""
STOP_WAIT_S = 600.0
"""Longest `checkpoint()` waits for the recipe to save and exit after the signal."""
REQUEUE_WAIT_S = 120.0
"""How long a rank > 0 whose recipe stopped on a signal waits for rank 0 to requeue the job."""
TERM_WAIT_S = 5.0
"""How long rank 0 waits after its recipe stopped on a signal, for a SIGUSR2 that would requeue the job
(submitit's preemption sends SIGTERM, then SIGUSR2)."""


class RecipeFailed(RuntimeError):
    """The recipe exited non-zero (and not to be requeued): submitit records it, the job is FAILED."""


@dataclass
class RankTask:
    """One member's job, as every rank runs it: paths and the recipe command (strings only)."""

    run_dir: str
    """The member's run directory."""
    argv: List[str]
    """The recipe command (the snapshot's script, `--config <run_dir>/config.yaml`)."""
    max_requeues: int
    """Requeues allowed after Slurm's signal (restarts counted by SLURM_RESTART_COUNT)."""
    _proc: Optional[subprocess.Popen] = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> Dict[str, Any]:
        return {"run_dir": self.run_dir, "argv": self.argv, "max_requeues": self.max_requeues}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(**state)

    # ------------------------------------------------------------ in the job

    @property
    def log_path(self) -> Path:
        return Path(self.run_dir) / "train.log"

    @property
    def rank(self) -> int:
        return int(os.environ.get("SLURM_PROCID", os.environ.get("RANK", "0")))

    def say(self, message: str) -> None:
        """A line in train.log, where the user looks."""
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"nemotron: {message}\n")

    def child_env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.pop("PYTHONSAFEPATH", None)  # set for submitit's runner only (snapshot before the cwd)
        secrets = Path(self.run_dir) / "secrets.env"
        if secrets.is_file():  # the batch script sourced it already; read again in case srun dropped it
            for line in secrets.read_text().splitlines():
                key, _, value = line.partition("=")
                if key:
                    env.setdefault(key, (shlex.split(value) or [""])[0])
        return env

    def __call__(self) -> str:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            self._proc = subprocess.Popen(self.argv, env=self.child_env(), stdout=log, stderr=subprocess.STDOUT)
        code = self.wait_for_recipe()
        if code == 0:
            return self.run_dir
        if code == PREEMPTED:
            return self.stopped_for_requeue()
        raise RecipeFailed(f"the recipe exited with code {code}; see {self.log_path}")

    def wait_for_recipe(self, limit_s: Optional[float] = None) -> int:
        """Polls (never a blocking wait: submitit's signal handler may run meanwhile and poll too)."""
        assert self._proc is not None
        deadline = None if limit_s is None else time.monotonic() + limit_s
        while self._proc.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        return self._proc.returncode if self._proc.returncode is not None else -1

    def stopped_for_requeue(self) -> str:
        """The recipe saved and exited 75 on a signal. Requeueing is submitit's handler's job (on global rank 0,
        for SIGUSR2): while it runs, this rank waits to be stopped by the requeue. A SIGTERM alone (scancel,
        or a preemption Slurm requeues itself) gets no requeue from us: the task exits 75 soon."""
        self.say(f"rank {self.rank}: stopped after saving a checkpoint (exit {PREEMPTED})")
        time.sleep(REQUEUE_WAIT_S if self.rank else TERM_WAIT_S)
        sys.exit(PREEMPTED)

    # ------------------------------------------------------------ submitit's checkpoint protocol

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on rank 0 when Slurm's signal arrives: this task again (requeue) or None."""
        from submitit.helpers import DelayedSubmission

        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGUSR2)  # in case the signal reached only this process
        code = self.wait_for_recipe(STOP_WAIT_S) if self._proc is not None else -1
        if code == 0:
            raise SystemExit(0)  # it finished before it could stop: nothing to requeue
        if code == PREEMPTED:
            self.say(f"rank {self.rank}: stopped after saving a checkpoint (exit {PREEMPTED})")
        marker = Path(self.run_dir) / PREEMPTED_MARKER
        restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        said = "stopped by a signal after saving a checkpoint"
        if not marker.exists():
            self.say(f"stopped by a signal without a complete checkpoint (exit {code}); not requeued")
            return None
        marker.unlink()
        if restarts >= self.max_requeues:
            self.say(
                f"{said}; not requeued: {self.max_requeues} restart(s) used (cluster.max_requeues); "
                "resubmit into the same run dir to resume"
            )
            return None
        self.say(f"{said}; requeueing (restart {restarts + 1} of {self.max_requeues})")
        return DelayedSubmission(RankTask(self.run_dir, list(self.argv), self.max_requeues))
