"""Run a planned pipeline on this machine: each stage a `python -m nemotron.train` subprocess, in order.

A stage finished for the same config (its record, outputs unchanged) is skipped and says so. A stage
that fails stops the chain with its log path; Ctrl-C stops it too. Either way the finished stages'
records and registered artifacts stay, and the same command again resumes: finished stages are
skipped, the stopped one restarts in its own directory from its last complete checkpoint.
`--from STAGE` / `--only STAGE` run that stage (and, for --from, the later ones) again even if
finished: its directory is moved aside to `<stage_dir>.old-<time>` first (nothing is deleted).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from nemotron.common.progress import duration
from nemotron.pipe import records, scores
from nemotron.pipe.plan import StagePlan
from nemotron.pipe.spec import PipelineError

INTERRUPTED = 130


class StageFailed(Exception):
    """A stage ended with a non-zero status (the message names the stage and its log)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def move_aside(plan: StagePlan) -> Optional[Path]:
    """Move the stage's directory to `<stage_dir>.old-<time>` (a forced rerun); the new path or None."""
    if not plan.stage_dir.exists():
        return None
    target = plan.stage_dir.with_name(f"{plan.stage_dir.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    plan.stage_dir.rename(target)
    return target


def selection(plans: List[StagePlan], start: Optional[str], only: Optional[str]) -> List[str]:
    """Stage names to run (forced) for --from/--only; [] means every stage, skipping finished ones."""
    names = [p.name for p in plans]
    for flag, value in (("--from", start), ("--only", only)):
        if value is not None and value not in names:
            raise PipelineError(f"{flag} {value}: no such stage (stages: {', '.join(names)})")
    if only:
        return [only]
    return names[names.index(start) :] if start else []


def require_inputs(plans: List[StagePlan], forced: List[str], done: Dict[str, Dict[str, Any]]) -> None:
    """With --from/--only, every stage before the first forced one must have finished for its config."""
    for plan in plans:
        if plan.name in forced:
            return
        if plan.name not in done and any(plan.name in p.upstream for p in plans if p.name in forced):
            raise PipelineError(
                f"stage {plan.name} has not finished for this config (no {records.STAGE_RECORD} "
                f"in {plan.stage_dir}); run it first, e.g. --from {plan.name}"
            )


def run_stage(plan: StagePlan, env: Dict[str, str]) -> int:
    """The stage as `python -m nemotron.train ...` (output streamed); its exit status."""
    argv = [sys.executable, "-m", "nemotron.train", *plan.train_args()]
    proc = subprocess.Popen(argv, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the child got the same SIGINT: let it save and stop
        try:
            proc.wait(timeout=120)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        raise


def stage_progress(name: str, number: int, total: int, seconds: float) -> str:
    """`stage sft done in 0:00:42 (5/8 stages)`: the line after each finished stage."""
    return f"stage {name} done in {duration(seconds)} ({number}/{total} stages)"


def run_all(
    pipeline: str,
    plans: List[StagePlan],
    start: Optional[str] = None,
    only: Optional[str] = None,
    stage_env: Callable[[StagePlan], Dict[str, str]] = lambda plan: {},
    on_stage: Callable[[StagePlan, str, Optional[Dict[str, Any]]], None] = lambda *a: None,
) -> int:
    """Run the stages in order; 0 when every selected stage finished or was skipped."""
    forced = selection(plans, start, only)
    done = {p.name: rec for p in plans if (rec := records.finished(p)) is not None}
    require_inputs(plans, forced, done)
    states: Dict[str, Dict[str, Any]] = {}
    for i, plan in enumerate(plans):
        if only and plan.name != only:
            continue
        if plan.name in done and plan.name not in forced:
            print(
                f"pipeline {pipeline}: stage {plan.name}: skipped, finished for the same config "
                f"(hash {plan.config_hash}) in {plan.stage_dir}",
                flush=True,
            )
            states[plan.name] = {"state": "skipped"}
            on_stage(plan, "skipped", done[plan.name])
            continue
        if plan.name in forced and (old := move_aside(plan)):
            print(f"pipeline {pipeline}: stage {plan.name}: earlier run moved to {old}", flush=True)
        print(f"pipeline {pipeline}: stage {plan.name} ({plan.stage.recipe}) -> {plan.stage_dir}", flush=True)
        states[plan.name] = {"state": "running"}
        records.write_pipeline(pipeline, plans, states)
        started = time.monotonic()
        try:
            code = run_stage(plan, {**os.environ, **stage_env(plan)})
        except KeyboardInterrupt:
            states[plan.name] = {"state": "interrupted"}
            records.write_pipeline(pipeline, plans, states)
            on_stage(plan, "interrupted", None)
            print(
                f"pipeline {pipeline}: interrupted in stage {plan.name}; finished stages are kept, the same "
                "command resumes",
                file=sys.stderr,
                flush=True,
            )
            return INTERRUPTED
        missing = records.missing_outputs(plan.outputs) if code == 0 else []
        if code != 0 or missing:
            states[plan.name] = {"state": "failed", "exit_code": code}
            records.write_pipeline(pipeline, plans, states)
            on_stage(plan, "failed", None)
            rest = [p.name for p in plans[i + 1 :] if not only]
            why = f"exit {code}" if code else f"it did not write {missing[0]}"
            raise StageFailed(
                f"pipeline {pipeline}: stage {plan.name} failed ({why}); log: "
                f"{plan.stage_dir / 'train.log'}; not run: {', '.join(rest) or 'none'}",
                code or 1,
            )
        done[plan.name] = records.record_stage(pipeline, plan, done, run_id=records.run_id_in(plan.stage_dir))
        states[plan.name] = {"state": "done"}
        records.write_pipeline(pipeline, plans, states)
        on_stage(plan, "done", done[plan.name])
        print(
            f"pipeline {pipeline}: {stage_progress(plan.name, i + 1, len(plans), time.monotonic() - started)}",
            flush=True,
        )
    print(f"pipeline {pipeline}: done ({', '.join(n + ' ' + s['state'] for n, s in states.items())})", flush=True)
    show_scores(pipeline, plans)
    return 0


def show_scores(pipeline: str, plans: List[StagePlan]) -> None:
    """The eval stages' scores side by side (also `<pipeline dir>/scores.md`), when there are any."""
    where = records.pipeline_dir(plans)
    text = scores.write(pipeline, [records.facts(p) for p in plans], where)
    if text:
        print(f"pipeline {pipeline}: eval scores ({where / scores.SCORES_FILE})\n{text}", flush=True)
