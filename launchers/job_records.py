"""The `slurm_job.json` records a Slurm submit leaves in each run directory, read back as `Job`s with
their state from Slurm.

Shared by the `python -m nemotron.jobs` commands (jobs.py: list, follow, cancel) and by resubmit.py,
which both sit above it; finding a record by run directory or job id, and one-line `JobsError`s for
bad input, live here too. Standard library only, like the rest of the compose/launch layer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

from nemotron.launchers import scheduler

RECORD = "slurm_job.json"
"""The record a Slurm submit (`nemotron.launchers.arrays.submit_arrays`) writes into each run directory."""


class JobsError(Exception):
    """Bad input for a person: one line, exit 2."""


@dataclass
class Job:
    """One submitted run, as recorded at submission, plus its state from Slurm."""

    job_id: str
    recipe: str
    run_dir: Path
    log: Path
    submitted_at: str = ""
    state: str = "unknown"
    exit_code: str = ""
    elapsed: str = ""

    @classmethod
    def from_record(cls, path: Path) -> "Job":
        rec = json.loads(path.read_text())
        run_dir = Path(rec.get("run_dir") or path.parent)
        return cls(
            job_id=str(rec["job_id"]),
            recipe=rec.get("recipe", "?"),
            run_dir=run_dir,
            log=Path(rec.get("log") or run_dir / "train.log"),
            submitted_at=rec.get("submitted_at", ""),
        )


def find_jobs(root: Path) -> List[Job]:
    """Every readable record under root, newest first (record time, then job id)."""
    found = []
    for path in root.rglob(RECORD):
        try:
            found.append((path.stat().st_mtime, Job.from_record(path)))
        except (OSError, ValueError, KeyError):
            continue
    found.sort(key=lambda mj: (mj[0], id_key(mj[1].job_id)), reverse=True)
    return [job for _, job in found]


def id_key(job_id: str) -> Tuple[int, str]:
    head = job_id.split("_")[0]
    return (int(head) if head.isdigit() else -1, job_id)


def resolve(target: str, root: Path) -> Job:
    """A run dir (with a record) or a job id recorded under root."""
    path = Path(target)
    if (path / RECORD).is_file():
        return Job.from_record(path / RECORD)
    if path.is_dir():
        raise JobsError(f"{target}: no {RECORD} in this directory (was it submitted to Slurm?)")
    if not root.is_dir():
        raise JobsError(f"{target}: not a run directory, and no runs under --root {root}")
    for job in find_jobs(root):
        if job.job_id == target:
            return job
    raise JobsError(
        f"{target}: no recorded job with this id and no such run directory under --root {root} "
        f"(see python -m nemotron.jobs list --root {root})"
    )


# ---------------------------------------------------------------- Slurm state


def fill_states(jobs: List[Job]) -> None:
    """State, exit code and elapsed for each job: one sacct call, then squeue, else "unknown"."""
    known, _ = scheduler.known_states([j.job_id for j in jobs])
    for job in jobs:
        found = known.get(job.job_id)
        job.state, job.exit_code, job.elapsed = (
            (found.state, found.exit_code, found.elapsed) if found else ("unknown", "", "")
        )
