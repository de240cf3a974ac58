"""One run directory's MLflow side, rebuilt from its files: create or continue the run, upload, finish.

`RunStore` is what both the live tracker (in a background thread) and
`python -m nemotron.tracking sync <run_dir>` use, so an upload interrupted anywhere is finished the
same way later. Every method may raise when the store is unreachable; callers retry. mlflow is
imported on first use.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from nemotron.tracking import context, settings
from nemotron.tracking.buffer import RunFiles
from nemotron.tracking.params import FULL_CONFIG_ARTIFACT, safe_key, to_params, to_tags
from nemotron.tracking.secrets import hide_uri_passwords, redact, scrub_text, secret_config_values

METRICS_PER_REQUEST = 900
"""Metrics per log_batch call (MLflow accepts 1000)."""
QUIET_LOGGERS = ("mlflow.store.db.utils", "alembic", "mlflow.tracking.fluent", "mlflow.utils.requirements_utils")


class TrackingError(RuntimeError):
    """The tracking store refused the run for a reason retrying will not fix (bad URI, deleted experiment)."""


def _member() -> Dict[str, Any]:
    try:
        return json.loads(os.environ.get(settings.MEMBER_ENV, "") or "{}")
    except json.JSONDecodeError:
        return {}


def experiment_id(client: Any, uri: str, name: str) -> str:
    """The id of experiment `name`, created if missing (a sqlite store keeps artifacts next to its db)."""
    from mlflow.exceptions import MlflowException

    problem = settings.experiment_problem(name)
    if problem:
        raise TrackingError(f"tracker.experiment: {problem}")
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = settings.local_artifact_root(uri) if settings.is_local_store(uri) else None
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":  # not a sweep member creating it meanwhile
                raise TrackingError(f"tracker.experiment={name!r}: {exc.message}") from exc
            experiment = client.get_experiment_by_name(name)
    if experiment.lifecycle_stage == "deleted":
        raise TrackingError(f"experiment {name!r} is deleted in {uri}: restore it "
                            "(mlflow experiments restore) or choose another tracker.experiment")
    return experiment.experiment_id


def connect(uri: str) -> Any:
    """An MlflowClient for `uri` with short HTTP timeouts; TrackingError for a malformed URI."""
    problem = settings.uri_problem(uri)
    if problem:
        raise TrackingError(f"tracker.uri: {problem}")
    settings.short_timeouts()
    if settings.is_local_store(uri):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if hide_uri_passwords(uri) != uri:  # MLflow prints "View run at <uri>", password and all
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    from mlflow import MlflowClient

    try:
        return MlflowClient(tracking_uri=uri)
    except Exception as exc:  # noqa: BLE001 - MLflow's own message says what is wrong
        schemes = re.search(r"Supported URI schemes are: (\[[^\]]*\])", str(exc))
        if schemes:
            raise TrackingError(f"tracker.uri={uri!r}: MLflow has no store for this scheme "
                                f"(supported: {schemes.group(1)})") from exc
        raise TrackingError(f"tracker.uri={uri!r}: {exc}") from exc


class RunStore:
    """Creates/continues the MLflow run of `files`' run directory and uploads what is pending."""

    def __init__(self, cfg: Any, container: Dict[str, Any], files: RunFiles,
                 uri: Optional[str] = None, experiment: Optional[str] = None) -> None:
        self.cfg, self.container, self.files = cfg, container, files
        self.uri = uri or settings.tracking_uri(cfg)
        self.experiment = experiment or settings.experiment_name(cfg)
        self.run_id: Optional[str] = None
        self.resumed = False
        self._client: Any = None
        self._drew, self._picture = False, None

    # ---- connection and run --------------------------------------------------------------------

    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.uri)
        return self._client

    def ensure_run(self) -> str:
        """The run id, after creating or continuing the run and logging params, tags and config."""
        if self.run_id is not None:
            return self.run_id
        client = self.client()
        run_id = self._continue(client) or self._create(client)
        self.files.run_id = run_id
        parent = os.environ.get(settings.PARENT_RUN_ENV)
        state = {"run_id": run_id, "uri": hide_uri_passwords(self.uri)}  # sync puts a password back from env
        self.files.update_state(**state, **({"parent_run_id": parent} if parent else {}))
        self._log_start(client, run_id)
        self.run_id = run_id
        return run_id

    def _candidates(self) -> List[tuple]:
        """Runs to continue, first match wins: tracker.run_id, the run directory's file, the run id the
        resumed checkpoint recorded (only when it is this run's own checkpoint, not a load_dir
        initialisation, which is a new run), $MLFLOW_RUN_ID."""
        own_ckpt = any(Path(str(self.cfg.checkpoint.dir)).glob("iter_*")) if "checkpoint" in self.cfg else False
        pairs = [("tracker.run_id", self.cfg.tracker.get("run_id")), ("the run directory", self.files.run_id),
                 ("the checkpoint", self.cfg.tracker.get("resume_run_id") if own_ckpt else None),
                 ("$MLFLOW_RUN_ID", os.environ.get("MLFLOW_RUN_ID"))]
        return [(where, rid) for where, rid in pairs if rid]

    def _continue(self, client: Any) -> Optional[str]:
        from mlflow.exceptions import MlflowException

        for where, run_id in self._candidates():
            try:
                run = client.get_run(run_id)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                print(f"warning: tracker: MLflow run {run_id} (from {where}) is not in {self.uri}; "
                      "starting a new run", flush=True)
                continue
            attempts = int(run.data.tags.get("nemotron.attempts", "1")) + 1
            client.update_run(run_id, status="RUNNING")
            client.set_tag(run_id, "nemotron.attempts", str(attempts))
            self.resumed = True
            return run_id
        return None

    def _experiment_id(self, client: Any) -> str:
        if not self.cfg.tracker.get("experiment") and os.environ.get("MLFLOW_EXPERIMENT_ID"):
            return os.environ["MLFLOW_EXPERIMENT_ID"]
        return experiment_id(client, self.uri, self.experiment)

    def _create(self, client: Any) -> str:
        tags = context.run_tags(self.cfg)
        parent = os.environ.get(settings.PARENT_RUN_ENV)
        member = _member()
        if parent:
            tags["mlflow.parentRunId"] = parent
        if member:
            tags.update({"nemotron.sweep.member": member.get("num"),
                         "nemotron.sweep.overrides": " ".join(member.get("overrides", []))})
        tags.update(dict(self.cfg.tracker.get("tags") or {}))
        run = client.create_run(self._experiment_id(client), tags=to_tags(tags), run_name=self.run_name(member))
        return run.info.run_id

    def run_name(self, member: Dict[str, Any]) -> str:
        if self.cfg.tracker.get("run_name"):
            return str(self.cfg.tracker.run_name)
        if member:
            return f"{member.get('num')}: {' '.join(member.get('overrides', [])) or 'defaults'}"
        return Path(str(self.cfg.run_dir)).name

    def _log_start(self, client: Any, run_id: str) -> None:
        from mlflow.entities import Param, RunTag

        params, tags = to_params(self.container), {}
        if self.resumed:  # params are immutable in MLflow: a changed value is recorded as a tag
            logged = client.get_run(run_id).data.params
            tags = {f"resume.param.{k}": v for k, v in params.items() if k in logged and logged[k] != v}
            tags.update(context.run_tags(self.cfg))  # a requeue has a new Slurm job id, maybe a new host
            params = {k: v for k, v in params.items() if k not in logged}
        items = [Param(k, v) for k, v in params.items()] + [RunTag(k, v) for k, v in to_tags(tags).items()]
        for i in range(0, len(items), 100):
            chunk = items[i:i + 100]
            client.log_batch(run_id, params=[p for p in chunk if isinstance(p, Param)],
                             tags=[t for t in chunk if isinstance(t, RunTag)])
        if self.cfg.tracker.get("log_artifacts", True):
            self._log_start_artifacts(client, run_id)

    def _log_start_artifacts(self, client: Any, run_id: str) -> None:
        from omegaconf import OmegaConf

        client.log_text(run_id, OmegaConf.to_yaml(OmegaConf.create(redact(self.container))), FULL_CONFIG_ARTIFACT)
        block = context.runspec_block(self.cfg.recipe.script) if self.cfg.recipe.script else None
        if block:
            client.log_text(run_id, self.scrub(block), "config/runspec.toml")
        for script in context.sbatch_scripts(self.cfg.run_dir):
            client.log_text(run_id, self.scrub(script.read_text(encoding="utf-8", errors="replace")),
                            f"slurm/{script.name}")

    def scrub(self, text: str) -> str:
        return scrub_text(text, secret_config_values(self.container))

    # ---- metrics -------------------------------------------------------------------------------

    def push_metrics(self) -> int:
        """Upload step records past the synced offset; returns how many were sent."""
        from mlflow.entities import Metric

        run_id, client = self.ensure_run(), self.client()
        sent, batch, lines = 0, [], 0
        for end, record in self.files.records(self.files.synced_offset()):
            millis, step = int(record.get("time", 0) * 1000), int(record.get("step", 0))
            batch += [Metric(safe_key(k), float(v), millis, step) for k, v in record.items()
                      if k not in ("step", "time") and isinstance(v, (int, float))]
            lines += 1
            if len(batch) >= METRICS_PER_REQUEST:
                client.log_batch(run_id, metrics=batch)
                self.files.update_state(synced_bytes=end)
                sent, batch, lines = sent + lines, [], 0
        if lines:
            if batch:
                client.log_batch(run_id, metrics=batch)
            self.files.update_state(synced_bytes=end)
            sent += lines
        return sent

    # ---- the end -------------------------------------------------------------------------------

    def finish(self, status: str, lineage: Optional[Dict[str, List[Dict[str, Any]]]] = None) -> None:
        """Upload what is pending, the end artifacts and lineage, then set the run's final status."""
        run_id, client = self.ensure_run(), self.client()
        self.push_metrics()
        if self.cfg.tracker.get("log_artifacts", True):
            self._log_end_artifacts(client, run_id)
        if lineage:
            self._log_lineage(client, run_id, lineage)
        client.set_terminated(run_id, status=status)
        self.files.update_state(finalized=status)

    def draw_picture(self) -> Optional[Path]:
        """Draw `<run_dir>/loss.png` from the run's metrics (once per store); None when nothing was drawn."""
        from nemotron.tracking.plots import PICTURE, read_series, write_run_picture

        if not self._drew:
            self._drew = True
            series = read_series(self.files.metrics_path) if self.files.metrics_path.is_file() else {}
            title = f"{self.experiment} / {self.run_name(_member())}"
            self._picture = write_run_picture(series, Path(str(self.cfg.run_dir)) / PICTURE, title)
        return self._picture

    def _log_end_artifacts(self, client: Any, run_id: str) -> None:
        log = Path(str(self.cfg.run_dir)) / "train.log"
        if log.is_file():  # the launcher may still be writing it: upload what is there now
            client.log_text(run_id, self.scrub(log.read_text(encoding="utf-8", errors="replace")), "logs/train.log")
        png = self.draw_picture()
        if png is not None:  # the run directory's own picture, the same file
            client.log_artifact(run_id, str(png), "plots")

    def _log_lineage(self, client: Any, run_id: str, lineage: Dict[str, List[Dict[str, Any]]]) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        from nemotron.tracking.registry import ref_of

        inputs, outputs = lineage.get("inputs", []), lineage.get("outputs", [])
        tags = {"nemotron.inputs": ", ".join(map(ref_of, inputs)) or None,
                "nemotron.outputs": ", ".join(map(ref_of, outputs)) or None}
        tags.update({f"nemotron.output.{e['name']}": f"{ref_of(e)} {e['path']} {e['hash']}" for e in outputs})
        for key, value in to_tags(tags).items():
            client.set_tag(run_id, key, value)
        datasets = [DatasetInput(
            Dataset(name=ref_of(e), digest=e["hash"].split(":")[-1][:36], source_type="local",
                    source=json.dumps({"uri": e["path"]}), profile=json.dumps({"kind": e["kind"]})),
            tags=[InputTag("mlflow.data.context", "training" if e["kind"] == "data" else e["kind"])])
            for e in inputs]
        if datasets:
            client.log_inputs(run_id, datasets=datasets)
