"""Job management for Slurm runs, from the `slurm_job.json` records `python -m nemotron.train` saves.

    python -m nemotron.jobs list [--root outputs] [--last 20]   # newest first: job, recipe, state, elapsed, run dir
    python -m nemotron.jobs follow <job id | run dir>           # print the log until the job ends; 0 iff COMPLETED
    python -m nemotron.jobs cancel <job id | run dir>           # scancel it
    python -m nemotron.jobs resubmit <sweep dir | run dir>      # what did not finish, resuming (resubmit.py)
    python -m nemotron.jobs resubmit <pipeline dir>             # a pipeline from its first unfinished stage

`list` shows each pipeline (`pipeline.json`, launchers/pipelines.py) as one unit with its stages' states.

States come from one `sacct` call for all listed jobs, from `squeue` when sacct does not answer, else
"unknown". A job id is looked up among the records under `--root`; an unknown one is a one-line error
(exit 2). Standard library only, like the rest of the compose/launch layer.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from nemotron.launchers import scheduler
from nemotron.launchers.wait import GRACE_S, wait

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


# ---------------------------------------------------------------- records


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


# ---------------------------------------------------------------- commands


def cmd_list(root: Path, last: int) -> int:
    from nemotron.launchers import pipelines

    units = pipelines.find(root)
    staged = pipelines.job_ids(units)
    jobs = [j for j in find_jobs(root) if j.job_id not in staged][:last] if root.is_dir() else []
    for line in pipelines.lines(units):
        print(line)
    if not jobs:
        if not units:
            print(f"no Slurm runs recorded under {root}")
        return 0
    fill_states(jobs)
    rows = [("JOBID", "RECIPE", "STATE", "ELAPSED", "RUN DIR")]
    rows += [(j.job_id, j.recipe, j.state, j.elapsed or "-", str(j.run_dir)) for j in jobs]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4])
    return 0


def cmd_follow(job: Job, poll_s: float, grace_s: float) -> int:
    ended = wait([job.job_id], follow=job.log, poll_s=poll_s, grace_s=grace_s)[job.job_id]
    if ended.why:
        print(f"{ended.why}; stopped following", file=sys.stderr)
    else:
        print(
            f"Slurm job {job.job_id}: {ended.state} (exit {ended.exit_code or '?'}, elapsed {ended.elapsed or '?'})",
            file=sys.stderr,
        )
    return ended.code


def cmd_cancel(job: Job) -> int:
    try:
        scheduler.scancel(job.job_id)
    except scheduler.SchedulerError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"cancelled Slurm job {job.job_id} ({job.recipe}, run dir {job.run_dir})")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nemotron.jobs", description=__doc__.split("\n")[0])
    p.add_argument("--root", type=Path, default=Path("outputs"), help="paths.output_root of the runs (default outputs)")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="recent runs with their Slurm state, newest first")
    ls.add_argument("--root", type=Path, default=argparse.SUPPRESS)
    ls.add_argument("--last", type=int, default=20, help="how many runs (default 20)")
    for name, what in (("follow", "print a run's log until the job ends"), ("cancel", "scancel a run's job")):
        sp = sub.add_parser(name, help=what)
        sp.add_argument("target", help="Slurm job id or run directory")
        sp.add_argument("--root", type=Path, default=argparse.SUPPRESS)
        if name == "follow":
            sp.add_argument("--poll", type=float, default=1.0, help="seconds between sacct polls (default 1)")
            sp.add_argument(
                "--grace",
                type=float,
                default=GRACE_S,
                help=f"seconds a job unknown to sacct and squeue is waited for (default {GRACE_S:.0f})",
            )
    rs = sub.add_parser("resubmit", help="resubmit a run, a sweep's unfinished members or a pipeline's stages")
    rs.add_argument("target", type=Path, help="sweep, run or pipeline directory")
    rs.add_argument("--root", type=Path, default=argparse.SUPPRESS)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list(args.root, args.last)
        if args.command == "resubmit":
            from nemotron.launchers import pipelines
            from nemotron.launchers.resubmit import resubmit

            if (args.target / pipelines.RECORD).is_file():  # a pipeline: its own command, unfinished stages
                return pipelines.resubmit(args.target)

            print(resubmit(args.target))
            return 0
        job = resolve(args.target, args.root)
        return cmd_follow(job, args.poll, args.grace) if args.command == "follow" else cmd_cancel(job)
    except (JobsError, scheduler.SchedulerError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
