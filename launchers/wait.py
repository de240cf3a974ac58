"""The one wait of the launch layer: until jobs end, for `cluster.wait=true`, sweeps and `jobs follow`.

    ended = wait(["123"], follow=Path("run/train.log"))            # stream one log, return when it ends
    ended = wait(["124_0", "124_1"], on_end=print_member)          # one callback per member as it ends

Each poll asks Slurm once for all pending jobs (`scheduler.known_states`: sacct, then squeue). It can
never hang: every Slurm command has a timeout, and a job that neither sacct nor squeue knows for
`grace_s` (a pending array task that was cancelled, a job slurmctld forgot while the accounting daemon
does not answer) ends the wait with state `UNKNOWN` and exit code 1, saying why. Standard library only.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from nemotron.launchers import scheduler
from nemotron.launchers.terminal import TerminalFilter

GRACE_S = 60.0
"""How long a job may be unknown to both sacct and squeue before the wait gives it up."""
UNKNOWN = "UNKNOWN"
"""The state of a job the wait gave up on."""


@dataclass
class Ended:
    """A job the wait saw end (or gave up on)."""

    job_id: str
    state: str
    """Slurm's final state, or UNKNOWN."""
    code: int
    """0 iff COMPLETED; else the job's exit code, at least 1."""
    exit_code: str = ""
    """Slurm's `code:signal`, "" when sacct did not say."""
    elapsed: str = ""
    why: str = ""
    """For UNKNOWN: what Slurm did (not) say."""


def exit_code_of(state: str, exit_code: str) -> int:
    """The exit code a command reports for a job: 0 iff COMPLETED, else the job's code (1..255), else 1."""
    if state == "COMPLETED":
        return 0
    code = exit_code.split(":")[0]
    return int(code) if code.isdigit() and 0 < int(code) < 256 else 1


class LogTail:
    """Prints what a file gained since the last call (nothing while it does not exist).

    With `shown` (a TerminalFilter), whole lines only, and only those it shows: a job's tracebacks stay
    in its log, and `shown.reason` keeps the exception line for the one-line error.
    """

    def __init__(self, path: Optional[Path], shown: Optional[TerminalFilter] = None) -> None:
        self.path, self.offset, self.shown = path, 0, shown

    def __call__(self, final: bool = False) -> None:
        if self.path is None or not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        if self.shown is not None and not final and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]  # a line still being written: next time
        self.offset += len(data)
        text = data.decode("utf-8", errors="replace")
        if self.shown is not None:
            text = "".join(line for line in text.splitlines(keepends=True) if self.shown.show(line))
        sys.stdout.write(text)
        sys.stdout.flush()


def gave_up(job_id: str, grace_s: float, sacct_answers: bool) -> Ended:
    why = f"neither sacct nor squeue has known Slurm job {job_id} for {grace_s:g} s" + (
        "" if sacct_answers else " (sacct does not answer: is slurmdbd running?)"
    )
    return Ended(job_id, UNKNOWN, 1, why=why)


def wait(
    job_ids: List[str],
    follow: Optional[Path] = None,
    poll_s: float = 1.0,
    grace_s: float = GRACE_S,
    on_end: Optional[Callable[[Ended], None]] = None,
    shown: Optional[TerminalFilter] = None,
) -> Dict[str, Ended]:
    """Poll until every job ended (or was given up); job id -> Ended. `follow` is a log streamed to stdout
    (through `shown`, a TerminalFilter, when given)."""
    tail, pending, ended = LogTail(follow, shown), list(dict.fromkeys(job_ids)), {}
    last_seen = {job_id: time.monotonic() for job_id in pending}
    while pending:
        known, sacct_answers = scheduler.known_states(pending)
        tail()
        now = time.monotonic()
        for job_id in list(pending):
            found = known.get(job_id)
            if found is not None and found.state in scheduler.ACTIVE_STATES:
                last_seen[job_id] = now
                continue
            if found is None and now - last_seen[job_id] < grace_s:
                continue
            done = (
                gave_up(job_id, grace_s, sacct_answers)
                if found is None
                else Ended(
                    job_id, found.state, exit_code_of(found.state, found.exit_code), found.exit_code, found.elapsed
                )
            )
            ended[job_id] = done
            pending.remove(job_id)
            if on_end is not None:
                on_end(done)
        if pending:
            time.sleep(poll_s)
    tail(final=True)
    return ended
