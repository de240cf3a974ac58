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
        if not self.parent:
            return {}
        return {PARENT_ENV: self.parent, "MLFLOW_EXPERIMENT_NAME": self.experiment or "pipeline"}

    def on_stage(self, plan: StagePlan, state: str, record: Optional[Dict[str, Any]]) -> None:
        self.states[plan.name] = {"state": state, "record": record}


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


@contextlib.contextmanager
def parent_run(pipe: PipelineConfig, plans: List[StagePlan]) -> Iterator[Hooks]:
    """The hooks of one local launch, with a parent MLflow run around it when tracking to MLflow."""
    if not tracked(plans):
        yield Hooks(None, None)
        return
    from nemotron.pipe.records import pipeline_dir

    cfg = plans[0].cfg
    experiment = pipe.experiment or cfg.tracker.experiment or f"pipeline/{pipe.name}"
    from nemotron.tracking.registry import registry_path
    from nemotron.tracking.settings import tracking_uri

    uri = tracking_uri(cfg)
    summary = pipeline_dir(plans) / "tracking.json"
    parent = helper("open", "--uri", uri, "--experiment", experiment, "--name", pipe.name)
    hooks = Hooks(parent or None, experiment)
    try:
        yield hooks
    finally:
        if hooks.parent:
            write_summary(summary, pipe, plans, hooks)
            helper(
                "close",
                "--uri",
                uri,
                "--run-id",
                hooks.parent,
                "--summary",
                str(summary),
                "--registry",
                registry_path(cfg),
            )


def write_summary(path: Path, pipe: PipelineConfig, plans: List[StagePlan], hooks: Hooks) -> None:
    """What the helper logs to the parent: stages, states, inputs/outputs, producers (no secrets)."""
    stages = []
    for plan in plans:
        state = hooks.states.get(plan.name, {"state": "not run", "record": None})
        stages.append(
            {
                "stage": plan.name,
                "recipe": plan.stage.recipe,
                "state": state["state"],
                "stage_dir": str(plan.stage_dir),
                "upstream": plan.upstream,
                "inputs": plan.inputs,
                "outputs": {a: o["path"] for a, o in plan.outputs.items()},
                "record": state["record"],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pipeline": pipe.name, "stages": stages}, indent=1), encoding="utf-8")
