"""Hydra callback: one MLflow parent run per `-m` sweep, each member's run nested under it.

Registered in conf/config.yaml under `hydra.callbacks`. Hydra builds it for every invocation, so
this module imports nothing heavy; mlflow is imported only once a parent run is created or ended,
which happens only for `-m` with `tracker=mlflow`. It implements the interface of
`hydra.experimental.callback.Callback` without importing Hydra (Hydra calls the methods by name),
so `nemotron/tracking` stays free of compose-side imports (tests/test_layering.py).

- `on_multirun_start`: plans the parent run; once the launcher has checked every member
  (nemotron/common/sweep_hooks.py: a refused sweep records nothing) it is created (params `sweep.<key>` =
  the swept values, tag `nemotron.sweep.overrides`, artifact `sweep.yaml`) and its id exported in
  $NEMOTRON_MLFLOW_PARENT_RUN_ID, which every member's training process inherits; the member's
  tracker sets `mlflow.parentRunId` from it.
- `on_job_start`: exports the member's swept values ($NEMOTRON_SWEEP_MEMBER) for its run name.
- `on_multirun_end`: logs a comparison table and one figure of the members to the parent and ends
  it. A sweep that stops on a failed member ends the parent as FAILED (at exit).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from typing import Any, List, Optional, Tuple

from nemotron.common.sweep_hooks import defer
from nemotron.tracking import settings

SWEEP_FUNCTIONS = ("range(", "choice(", "glob(", "interval(")
"""Hydra override values that expand to several values."""


def _say(text: str) -> None:
    print(f"tracker: {text}", file=sys.stderr, flush=True)


def _top_level_comma(value: str) -> bool:
    depth, quote = 0, ""
    for char in value:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            return True
    return False


def split_override(line: str) -> Tuple[str, str]:
    """'+optim.lr=1e-3,3e-3' -> ('optim.lr', '1e-3,3e-3')."""
    key, _, value = line.partition("=")
    return key.lstrip("+~"), value


def is_sweep(line: str) -> bool:
    """True for Hydra's sweep overrides: `key=a,b`, `key=range(..)`, `choice(..)`, `glob(..)`, `interval(..)`."""
    value = split_override(line)[1].strip()
    return value.startswith(SWEEP_FUNCTIONS) or _top_level_comma(value)


class MlflowSweepCallback:
    """Creates and ends the parent run of a sweep (tracker=mlflow only)."""

    def __init__(self) -> None:
        from nemotron.tracking.registry import register_resolver

        register_resolver()  # `${art:...}` in the job config resolves after Hydra builds callbacks
        self.parent_run_id: Optional[str] = None
        self.uri: Optional[str] = None
        self.swept_keys: List[str] = []
        self.config: Optional[Any] = None
        self.failed = 0

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        """Plans the parent run; it is created once every member passed its checks (a refused sweep
        records nothing), or at the first member's start under a launcher that does not say so."""
        if config.tracker.kind != "mlflow" or config.get("dry_run"):
            return  # a dry run records nothing
        self.config = config
        self.swept_keys = [split_override(line)[0] for line in config.hydra.overrides.task if is_sweep(line)]
        defer(self._start_parent)

    def _start_parent(self) -> None:
        config, self.config = self.config, None
        if config is None:
            return  # already started
        task = list(config.hydra.overrides.task)
        swept = [line for line in task if is_sweep(line)]
        try:
            self.parent_run_id = self._create_parent(config, task, swept)
        except Exception as exc:  # noqa: BLE001 - tracking never stops a sweep
            _say(f"warning: no MLflow parent run for this sweep ({type(exc).__name__}: {exc}); "
                 "members are tracked as separate runs")
            return
        os.environ[settings.PARENT_RUN_ENV] = self.parent_run_id
        atexit.register(self._end, "FAILED")
        _say(f"sweep parent run {self.parent_run_id} in {self.uri}")

    def _create_parent(self, config: Any, task: List[str], swept: List[str]) -> str:
        from nemotron.tracking import context
        from nemotron.tracking.params import to_tags, truncate
        from nemotron.tracking.store import connect, experiment_id

        self.uri = settings.tracking_uri(config)
        client = connect(self.uri)
        name = settings.experiment_name(config)
        exp = os.environ.get("MLFLOW_EXPERIMENT_ID") if not config.tracker.experiment else None
        fixed = [line for line in task if line not in swept]
        sha, dirty = context.git_state(config.recipe.script or __file__)
        tags = {"nemotron.sweep": "parent", "nemotron.recipe": config.recipe.name or None,
                "nemotron.sweep.overrides": " ".join(swept),
                "nemotron.sweep.fixed": " ".join(fixed), "nemotron.git.commit": sha,
                "nemotron.git.dirty": None if dirty is None else str(dirty).lower(),
                "mlflow.source.git.commit": sha, "nemotron.cluster": config.cluster.name}
        run_name = f"sweep: {' '.join(swept) or 'no swept keys'}"
        run = client.create_run(exp or experiment_id(client, self.uri, name), tags=to_tags(tags),
                                run_name=truncate(run_name, 250))
        run_id = run.info.run_id
        for line in swept:
            key, value = split_override(line)
            client.log_param(run_id, f"sweep.{key}", truncate(value, 6000))
        definition = {"sweep": swept, "fixed": fixed,
                      "sweeper": config.hydra.sweeper.get("_target_"), "launcher": config.hydra.launcher.get("_target_")}
        client.log_text(run_id, json.dumps(definition, indent=1), "sweep.json")
        return run_id

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        if not self.swept_keys:  # a single run, or tracker is not mlflow
            return
        self._start_parent()
        mine = [line for line in config.hydra.overrides.task if split_override(line)[0] in self.swept_keys]
        os.environ[settings.MEMBER_ENV] = json.dumps({"num": int(config.hydra.job.num), "overrides": mine})

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        pass

    def on_run_end(self, config: Any, **kwargs: Any) -> None:
        pass

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        if getattr(getattr(job_return, "status", None), "name", "") == "FAILED":
            self.failed += 1

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if not self.parent_run_id:
            return
        if str(getattr(config.cluster.executor, "value", config.cluster.executor)) == "slurm":
            self._submitted(config)
            return
        try:
            from nemotron.tracking.compare import log_summary

            log_summary(self.uri, self.parent_run_id)
        except Exception as exc:  # noqa: BLE001
            _say(f"warning: could not log the sweep summary: {type(exc).__name__}: {exc}")
        self._end("FAILED" if self.failed else "FINISHED")

    def _submitted(self, config: Any) -> None:
        """Members were submitted to Slurm, not run: they attach to the parent when they start (the
        id travels in the jobs' environment). The parent ends now; the summary comes later, on demand."""
        sweep_dir = str(config.hydra.sweep.dir)
        try:
            from nemotron.tracking.store import connect

            connect(self.uri).set_tag(self.parent_run_id, "nemotron.sweep.submitted_to", f"slurm: {sweep_dir}")
        except Exception as exc:  # noqa: BLE001
            _say(f"warning: could not tag the sweep's parent run: {type(exc).__name__}: {exc}")
        _say(f"members attach to parent run {self.parent_run_id} as they run; table and plot once they are done: "
             f"python -m nemotron.tracking compare {self.parent_run_id}")
        self._end("FINISHED")

    def _end(self, status: str) -> None:
        run_id, self.parent_run_id = self.parent_run_id, None
        os.environ.pop(settings.PARENT_RUN_ENV, None)
        os.environ.pop(settings.MEMBER_ENV, None)
        if not run_id:
            return
        try:
            from nemotron.tracking.store import connect

            connect(self.uri).set_terminated(run_id, status=status)
        except Exception as exc:  # noqa: BLE001
            _say(f"warning: could not end the sweep's parent run {run_id}: {type(exc).__name__}: {exc}")
