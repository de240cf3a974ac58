"""Every run under the outputs root, local and Slurm, read from what its run directory records.

A run directory holds the resolved `config.yaml` (written before anything starts) and `train.log`,
`slurm_job.json` (a Slurm submit, launchers/records.py) or `tracking/` (metrics.jsonl, state.json).
Its state:

- a Slurm run: Slurm's (one sacct call for all of them, then squeue: launchers/job_records.py);
- a local run: RUNNING while a process has `<run dir>/config.yaml` on its command line (the recipe
  process the local launcher starts), else the tracker's final status (`tracking/state.json`), else
  FINISHED when `train.log` ends with the trainer's `done |` line, else STOPPED (it ended without one).

Steps and the last loss come from the tracker's `metrics.jsonl`, else from the `step N/M | loss X` lines of
the log. A run is named by its directory, its path under the root (`nano3/pretrain/<time>`), a unique
tail of that path (`<time>`) or its Slurm job id. Standard library only (the compose/launch layer).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from nemotron.launchers.job_records import RECORD, Job, JobsError, fill_states

CONFIG = "config.yaml"
LOG = "train.log"
METRICS = "metrics.jsonl"
SKIPPED_PARTS = {".hydra", "mlartifacts", "tracking", "checkpoints"}
"""Folders that hold copies of a config, never a run."""
STEP_LINE = re.compile(r"^step (\d+)/\d+ \| loss ([0-9.eE+-]+|nan|inf)")
DONE_LINE = re.compile(r"^done \| ")
RECIPE_LINE = re.compile(r"^  name: (\S+)$", re.MULTILINE)


@dataclass
class Run:
    """One run directory and what it says about itself."""

    run_dir: Path
    name: str
    """Its path under the outputs root."""
    recipe: str = "?"
    state: str = "unknown"
    steps: str = "-"
    last_loss: str = "-"
    job: Optional[Job] = None
    """The Slurm job that ran it, if it was submitted."""

    @property
    def job_id(self) -> str:
        return self.job.job_id if self.job else "-"

    @property
    def log(self) -> Path:
        return self.job.log if self.job else self.run_dir / LOG


def near(word: str, names: Sequence[str]) -> str:
    """' (closest: a, b, c)' for up to three similar names, or ''."""
    found = difflib.get_close_matches(word, list(names), n=3, cutoff=0.5)
    return f" (closest: {', '.join(found)})" if found else ""


def run_dirs(root: Path) -> List[Path]:
    """Directories under `root` with a config.yaml and a log, a job record or tracking files."""
    found = []
    for config in root.rglob(CONFIG):
        here = config.parent
        if SKIPPED_PARTS.intersection(here.relative_to(root).parts):
            continue
        if any((here / marker).exists() for marker in (LOG, RECORD, "tracking", METRICS)):
            found.append(here)
    return found


def recipe_of(run_dir: Path) -> str:
    """`recipe.name` of the run's config (the first `  name:` line: the resolved config starts with it)."""
    try:
        with open(run_dir / CONFIG, encoding="utf-8") as f:
            head = f.read(2048)
    except OSError:
        return "?"
    match = RECIPE_LINE.search(head)
    return match.group(1) if match else "?"


def running_pids(run_dir: Path) -> List[int]:
    """Processes with `<run_dir>/config.yaml` on their command line (Linux /proc; [] elsewhere)."""
    wanted = str((run_dir / CONFIG).resolve()).encode()
    pids = []
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc").is_dir() else []:
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in argv and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


def metrics_file(run_dir: Path) -> Path:
    """The step records: `tracking/metrics.jsonl` (tracker=mlflow), else `metrics.jsonl` (tracker=jsonl)."""
    buffered = run_dir / "tracking" / METRICS
    return buffered if buffered.is_file() else run_dir / METRICS


def progress(run: Run) -> None:
    """Fill `steps` and `last_loss` from the metrics file, else from the log's step lines."""
    metrics = metrics_file(run.run_dir)
    last = {}
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if "loss" in record:
                last = record
    if last:
        run.steps, run.last_loss = str(last.get("step", "-")), f"{float(last['loss']):.4f}"
        return
    for line in tail(run.log, 200):
        match = STEP_LINE.match(line)
        if match:
            run.steps, run.last_loss = match.group(1), f"{float(match.group(2)):.4f}"


def tail(path: Path, lines: int) -> List[str]:
    """The last `lines` lines of a text file ([] when it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200 * lines))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def local_state(run: Run) -> str:
    """RUNNING, the tracker's final status, FINISHED (the log's `done |` line) or STOPPED."""
    if running_pids(run.run_dir):
        return "RUNNING"
    try:
        state = json.loads((run.run_dir / "tracking" / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {}
    if state.get("final_status"):
        return str(state["final_status"])
    return "FINISHED" if any(DONE_LINE.match(line) for line in tail(run.log, 20)) else "STOPPED"


def read_run(run_dir: Path, root: Path) -> Run:
    """A Run with its recipe, job record and progress (states are filled by `fill`)."""
    name = str(run_dir.relative_to(root)) if run_dir.is_relative_to(root) else str(run_dir)
    run = Run(run_dir=run_dir, name=name, recipe=recipe_of(run_dir))
    if (run_dir / RECORD).is_file():
        try:
            run.job = Job.from_record(run_dir / RECORD)
            run.recipe = run.job.recipe if run.recipe == "?" else run.recipe
        except (OSError, ValueError, KeyError):
            run.job = None
    progress(run)
    return run


def fill(runs: List[Run]) -> None:
    """Every run's state: Slurm's for submitted runs (one query), the local rules for the rest."""
    jobs = [r.job for r in runs if r.job is not None]
    if jobs:
        fill_states(jobs)
    for run in runs:
        run.state = run.job.state if run.job is not None else local_state(run)


def find_runs(root: Path, last: Optional[int] = None) -> List[Run]:
    """The runs under `root`, newest first (by config.yaml time), with their states."""
    if not root.is_dir():
        return []
    dirs = sorted(run_dirs(root), key=lambda d: (d / CONFIG).stat().st_mtime, reverse=True)
    runs = [read_run(d, root) for d in dirs[:last]]
    fill(runs)
    return runs


def resolve(target: str, root: Path) -> Run:
    """The run `target` names (a directory, a name under root, a unique tail of one, a Slurm job id)."""
    path = Path(target)
    if path.is_dir() and (path / CONFIG).is_file():
        run = read_run(path.resolve(), root.resolve())
        fill([run])
        return run
    dirs = run_dirs(root) if root.is_dir() else []
    runs = [read_run(d, root) for d in dirs]
    names = [r.name for r in runs] + [r.job_id for r in runs if r.job]
    exact = [r for r in runs if target in (r.name, r.job_id)]
    tails = [r for r in runs if r.name.endswith("/" + target.strip("/"))]
    match = exact or tails
    if len(match) > 1:
        raise JobsError(
            f"{target}: names {len(match)} runs ({', '.join(r.name for r in match[:4])}); give more of the path"
        )
    if not match:
        where = f"under {root}" if root.is_dir() else f"(no runs: {root} does not exist; see --root)"
        hint = near(target, names + [n.rsplit("/", 1)[-1] for n in names])
        raise JobsError(f"{target}: no such run or job id {where}{hint}; see `nemotron jobs --root {root}`")
    fill(match)
    return match[0]
