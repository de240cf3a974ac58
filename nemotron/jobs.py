"""Job management for Slurm runs, from the `slurm_job.json` records `python -m nemotron.train` saves.

    python -m nemotron.jobs list [--root outputs] [--last 20]   # newest first: job, recipe, state, elapsed, run dir
    python -m nemotron.jobs follow <job id | run dir>           # print the log until the job ends; 0 iff COMPLETED
    python -m nemotron.jobs cancel <job id | run dir>           # scancel it
    python -m nemotron.jobs resubmit <sweep dir | run dir>      # what did not finish, resuming (resubmit.py)

States come from one `sacct` call for all listed jobs, from `squeue` when sacct does not answer, else
"unknown". A job id is looked up among the records under `--root`; an unknown one is a one-line error
(exit 2). Standard library only, like the rest of the compose/launch layer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

RECORD = "slurm_job.json"
"""The record `nemotron.slurm.submit` writes into each run directory."""
ACTIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
                 "RESIZING", "SUSPENDED"}
"""Slurm states of a job that has not ended yet (a requeued job passes through REQUEUED)."""
UNSEEN_GRACE_S = 60.0
"""How long `follow` waits for a job neither sacct nor squeue knows before giving up."""
TIMEOUT_S = 30


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
        return cls(job_id=str(rec["job_id"]), recipe=rec.get("recipe", "?"), run_dir=run_dir,
                   log=Path(rec.get("log") or run_dir / "train.log"), submitted_at=rec.get("submitted_at", ""))


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
    raise JobsError(f"{target}: no recorded job with this id and no such run directory under --root {root} "
                    f"(see python -m nemotron.jobs list --root {root})")


# ---------------------------------------------------------------- Slurm state

def run(argv: List[str]) -> Optional[str]:
    """stdout of a Slurm command, or None when it is missing, fails or hangs."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def sacct_states(ids: List[str]) -> Optional[Dict[str, Tuple[str, str, str]]]:
    """job id -> (state, exit code, elapsed) from one sacct call; None when sacct does not answer."""
    out = run(["sacct", "-n", "-X", "-P", "-j", ",".join(ids), "-o", "JobID,State,ExitCode,Elapsed"])
    if out is None:
        return None
    states = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) >= 4:
            states[parts[0]] = (parts[1].split()[0] if parts[1] else "", parts[2], parts[3])
    return states


def squeue_states(ids: List[str]) -> Dict[str, Tuple[str, str, str]]:
    """job id -> (state, "", elapsed) for jobs still in the queue (squeue forgets ended jobs)."""
    out = run(["squeue", "-h", "-r", "-j", ",".join(ids), "-o", "%i|%T|%M"]) or ""  # -r: one line per array task
    return {p[0]: (p[1], "", p[2]) for p in (ln.split("|") for ln in out.splitlines()) if len(p) == 3}


def known_states(ids: List[str]) -> Dict[str, Tuple[str, str, str]]:
    """job id -> (state, exit code, elapsed): one sacct call, then squeue for what sacct lacks."""
    known = (sacct_states(ids) or {}) if ids else {}
    missing = [i for i in ids if i not in known]
    if missing:
        known.update(squeue_states(missing))
    return known


def fill_states(jobs: List[Job]) -> None:
    """State, exit code and elapsed for each job: sacct, then squeue, else "unknown"."""
    known = known_states([j.job_id for j in jobs])
    for job in jobs:
        job.state, job.exit_code, job.elapsed = known.get(job.job_id, ("unknown", "", ""))


def sbatch(script: Path, *options: str) -> str:
    """`sbatch --parsable [options] script` -> the job id; a JobsError with sbatch's reason otherwise."""
    try:
        out = subprocess.run(["sbatch", "--parsable", *options, str(script)], capture_output=True, text=True,
                             timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise JobsError(f"sbatch refused the job ({script}): {err}") from err
    if out.returncode != 0:
        reason = (out.stderr.strip() or out.stdout.strip()).splitlines()
        raise JobsError(f"sbatch refused the job ({script}): {reason[-1] if reason else out.returncode}")
    return out.stdout.strip().split(";")[0]


# ---------------------------------------------------------------- commands

def cmd_list(root: Path, last: int) -> int:
    jobs = find_jobs(root)[:last] if root.is_dir() else []
    if not jobs:
        print(f"no Slurm runs recorded under {root}")
        return 0
    fill_states(jobs)
    rows = [("JOBID", "RECIPE", "STATE", "ELAPSED", "RUN DIR")]
    rows += [(j.job_id, j.recipe, j.state, j.elapsed or "-", str(j.run_dir)) for j in jobs]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
    return 0


def print_new(log: Path, offset: int) -> int:
    """Print what the log gained since offset; the new offset."""
    if not log.exists():
        return offset
    with log.open("r", encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        sys.stdout.write(f.read())
        offset = f.tell()
    sys.stdout.flush()
    return offset


def cmd_follow(job: Job, poll_s: float) -> int:
    offset, unseen_since = 0, time.monotonic()
    while True:
        fill_states([job])
        offset = print_new(job.log, offset)
        if job.state not in ACTIVE_STATES | {"", "unknown"}:
            break
        if job.state in ("", "unknown") and time.monotonic() - unseen_since > UNSEEN_GRACE_S:
            print(f"Slurm job {job.job_id}: neither sacct nor squeue knows it; stopped following", file=sys.stderr)
            return 1
        if job.state not in ("", "unknown"):
            unseen_since = time.monotonic()
        time.sleep(poll_s)
    print(f"Slurm job {job.job_id}: {job.state} (exit {job.exit_code or '?'}, elapsed {job.elapsed or '?'})",
          file=sys.stderr)
    if job.state == "COMPLETED":
        return 0
    code = job.exit_code.split(":")[0]
    return int(code) if code.isdigit() and 0 < int(code) < 256 else 1


def cmd_cancel(job: Job) -> int:
    try:
        out = subprocess.run(["scancel", job.job_id], capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        print(f"scancel {job.job_id} failed: {err}", file=sys.stderr)
        return 1
    if out.returncode != 0:
        print(f"scancel {job.job_id} failed: {(out.stderr or out.stdout).strip()}", file=sys.stderr)
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
    rs = sub.add_parser("resubmit", help="resubmit a run, or a sweep's unfinished members, to resume")
    rs.add_argument("target", type=Path, help="sweep directory or run directory")
    rs.add_argument("--root", type=Path, default=argparse.SUPPRESS)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list(args.root, args.last)
        if args.command == "resubmit":
            from nemotron.resubmit import resubmit

            print(resubmit(args.target))
            return 0
        job = resolve(args.target, args.root)
        return cmd_follow(job, args.poll) if args.command == "follow" else cmd_cancel(job)
    except JobsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
