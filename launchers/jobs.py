"""Job management for Slurm runs, from the `slurm_job.json` records `python -m nemotron.train` saves.

    python -m nemotron.jobs list [--root outputs] [--last 20]   # newest first: job, recipe, state, elapsed, run dir
    python -m nemotron.jobs follow <job id | run dir>           # print the log until the job ends; 0 iff COMPLETED
    python -m nemotron.jobs cancel <job id | run dir>           # scancel it
    python -m nemotron.jobs resubmit <sweep dir | run dir>      # what did not finish, resuming (resubmit.py)
    python -m nemotron.jobs resubmit <pipeline dir>             # a pipeline from its first unfinished stage

`list` shows each pipeline (`pipeline.json`, launchers/pipelines.py) as one unit with its stages' states.

States come from one `sacct` call for all listed jobs, from `squeue` when sacct does not answer, else
"unknown". A job id is looked up among the records under `--root` (job_records.py); an unknown one is a
one-line error (exit 2). Standard library only, like the rest of the compose/launch layer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from nemotron.launchers import pipelines, scheduler
from nemotron.launchers.job_records import Job, JobsError, fill_states, find_jobs, resolve
from nemotron.launchers.resubmit import resubmit
from nemotron.launchers.wait import GRACE_S, wait

# ---------------------------------------------------------------- commands


def cmd_list(root: Path, last: int) -> int:
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
