"""Pipelines in `python -m nemotron.jobs`: each `pipeline.json` (nemotron/pipe/records.py) as one unit.

`list` shows a pipeline's stages with their Slurm states (one sacct call for all); `resubmit
<pipeline dir>` runs the pipeline's own command again (`python -m nemotron.pipe ...`, as recorded),
which submits what did not finish, from the first unfinished stage on. Standard library only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Set

from nemotron.launchers import scheduler

RECORD = "pipeline.json"
REDACTED = "<redacted>"
"""What nemotron.tracking.secrets writes in place of a secret value."""


def find(root: Path) -> List[Dict[str, Any]]:
    """Every readable pipeline record under root, newest first, each with its `dir`."""
    found = []
    for path in root.rglob(RECORD) if root.is_dir() else []:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and "stages" in rec:
            found.append((path.stat().st_mtime, {**rec, "dir": str(path.parent)}))
    return [rec for _, rec in sorted(found, key=lambda mr: mr[0], reverse=True)]


def job_ids(records: List[Dict[str, Any]]) -> Set[str]:
    """The Slurm job ids the records name (their stages' jobs are listed with their pipeline)."""
    stages = {str(s["job_id"]) for rec in records for s in rec["stages"] if s.get("job_id")}
    return stages | {str(rec["finish_job_id"]) for rec in records if rec.get("finish_job_id")}


def lines(records: List[Dict[str, Any]]) -> List[str]:
    """One header per pipeline, then one line per stage: name, job id, state, exit code, stage dir."""
    known, _ = scheduler.known_states(sorted(job_ids(records)))
    out = []
    for rec in records:
        out.append(
            f"pipeline {rec['pipeline']} ({rec['dir']}, cluster {rec.get('cluster', 'local')}, "
            f"updated {rec.get('updated', '?')})"
        )
        for stage in rec["stages"]:
            job = str(stage.get("job_id") or "")
            state = known.get(job)
            shown = (state.state if state else "unknown") if job else stage.get("state", "not run")
            code = f" exit {state.exit_code}" if state and state.exit_code else ""
            why = f" ({stage['why']})" if stage.get("why") else ""
            out.append(f"  {stage['stage']:<12} {job or '-':<10} {shown}{code}{why}  {stage['stage_dir']}")
        if rec.get("finish_job_id"):
            state = known.get(str(rec["finish_job_id"]))
            out.append(f"  {'(finish)':<12} {rec['finish_job_id']:<10} {state.state if state else 'unknown'}")
    return out


def resubmit(target: Path) -> int:
    """Run the recorded `python -m nemotron.pipe` command again (from where it was given); its status."""
    rec = json.loads((target / RECORD).read_text(encoding="utf-8"))
    argv = rec.get("argv")
    if not argv:
        print(f"error: {target / RECORD} records no command (a local run: rerun it the same way)", file=sys.stderr)
        return 2
    if any(REDACTED in arg for arg in argv):  # the record keeps no secret values
        print(
            f"error: {target / RECORD}: the pipeline was submitted with a secret on its command line; give "
            "it again: python -m nemotron.pipe " + " ".join(argv),
            file=sys.stderr,
        )
        return 2
    cwd = rec.get("cwd") or os.getcwd()
    return subprocess.run([sys.executable, "-m", "nemotron.pipe", *argv], cwd=cwd).returncode
