"""MLflow for a pipeline, from the launch side without importing mlflow: a parent run, nested stages.

Only when the stages track to MLflow (`tracker=mlflow`, the default): a helper subprocess
(`python -m nemotron.tracking.pipeline open|close`, which may import mlflow) opens the parent run;
each stage's `python -m nemotron.train` gets its id as `$NEMOTRON_MLFLOW_PARENT_RUN_ID` (the tracker then
tags its run `mlflow.parentRunId`, as sweep members are); at the end the helper records each stage's
inputs/outputs and logs a PNG of the graph with each stage's state and final loss or reward.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from nemotron.config.schema_pipeline import PipelineConfig
from nemotron.pipe.plan import StagePlan
from nemotron.tracking.settings import PARENT_RUN_ENV as PARENT_ENV


class Hooks:
    """What the local runner calls: the environment of each stage, and each stage's end."""

    def __init__(self, parent: Optional[str], experiment: Optional[str]) -> None:
        self.parent, self.experiment = parent, experiment
        self.states: Dict[str, Dict[str, Any]] = {}

    def stage_env(self, plan: StagePlan) -> Dict[str, str]:
        return stage_environ(self.parent, self.experiment)

    def on_stage(self, plan: StagePlan, state: str, record: Optional[Dict[str, Any]]) -> None:
        self.states[plan.name] = {"state": state, "record": record}


def stage_environ(parent: Optional[str], experiment: Optional[str]) -> Dict[str, str]:
    """What a stage's process needs to nest its run under the parent (nothing without one)."""
    if not parent:
        return {}
    return {PARENT_ENV: parent, "MLFLOW_EXPERIMENT_NAME": experiment or "pipeline"}


def tracked(plans: List[StagePlan]) -> bool:
    """True when the stages log to MLflow."""
    return str(plans[0].cfg.tracker.kind) == "mlflow"


def helper(*args: str) -> Optional[str]:
    """Run the tracking helper; its last stdout line, or None (a message on stderr) when it failed."""
    proc = subprocess.run([sys.executable, "-m", "nemotron.tracking.pipeline", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"nemotron.pipe: MLflow parent run not recorded ({tail})", file=sys.stderr, flush=True)
        return None
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def open_parent(pipe: PipelineConfig, plans: List[StagePlan]) -> Dict[str, str]:
    """Open the pipeline's parent MLflow run when the stages track to MLflow: {uri, parent_run_id,
    experiment, registry}; {} when not tracked or the store did not answer (said on stderr)."""
    if not tracked(plans):
        return {}
    from nemotron.tracking.registry import registry_path
    from nemotron.tracking.settings import tracking_uri

    cfg = plans[0].cfg
    experiment = pipe.experiment or cfg.tracker.experiment or f"pipeline/{pipe.name}"
    uri = tracking_uri(cfg)
    parent = helper("open", "--uri", uri, "--experiment", experiment, "--name", pipe.name)
    if not parent:
        return {}
    return {"uri": uri, "parent_run_id": parent, "experiment": experiment, "registry": str(registry_path(cfg))}


def close_parent(opened: Dict[str, str], summary: Path) -> None:
    """Log the summary's stages to the parent run and end it (through the helper)."""
    helper("close", "--uri", opened["uri"], "--run-id", opened["parent_run_id"], "--summary", str(summary),
           "--registry", opened["registry"])  # fmt: skip


def close_unsubmitted(opened: Dict[str, str], pipeline: str, plans: List[StagePlan], refused: str) -> None:
    """End a parent run whose first stage Slurm refused (nothing was submitted): FAILED, no stage ran."""
    from nemotron.pipe.records import facts, pipeline_dir

    summary = pipeline_dir(plans) / "tracking.json"
    entries = [summary_entry(facts(p), "failed" if p.name == refused else "not run", None) for p in plans]
    write_summary(summary, pipeline, entries)
    close_parent(opened, summary)


@contextlib.contextmanager
def parent_run(pipe: PipelineConfig, plans: List[StagePlan]) -> Iterator[Hooks]:
    """The hooks of one local launch, with a parent MLflow run around it when tracking to MLflow."""
    from nemotron.pipe.records import pipeline_dir

    opened = open_parent(pipe, plans)
    hooks = Hooks(opened.get("parent_run_id"), opened.get("experiment"))
    try:
        yield hooks
    finally:
        if hooks.parent:
            summary = pipeline_dir(plans) / "tracking.json"
            write_summary(summary, pipe.name, local_summary(plans, hooks))
            close_parent(opened, summary)


def summary_entry(stage: Dict[str, Any], state: str, record: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """One stage as the helper logs it, from its records.facts, its state and its record."""
    return {
        "stage": stage["stage"],
        "recipe": stage["recipe"],
        "state": state,
        "stage_dir": stage["stage_dir"],
        "upstream": stage["upstream"],
        "inputs": stage["inputs"],
        "outputs": {a: o["path"] for a, o in stage["outputs"].items()},
        "record": record,
    }


def write_summary(path: Path, pipeline: str, stages: List[Dict[str, Any]]) -> None:
    """What the helper logs to the parent: stages, states, inputs/outputs, producers (no secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pipeline": pipeline, "stages": stages}, indent=1), encoding="utf-8")


def local_summary(plans: List[StagePlan], hooks: Hooks) -> List[Dict[str, Any]]:
    """The summary entries of a local launch (a stage the launch did not reach is `not run`)."""
    from nemotron.pipe.records import facts

    entries = []
    for plan in plans:
        state = hooks.states.get(plan.name, {"state": "not run", "record": None})
        entries.append(summary_entry(facts(plan), state["state"], state["record"]))
    return entries
