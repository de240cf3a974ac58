"""The MLflow tracker (`tracker=mlflow`, the default): one MLflow run per training run, never in the way.

`log()` only appends to `<run_dir>/tracking/metrics.jsonl`; a background thread uploads new lines
every `tracker.flush_interval_s`. When the store is unreachable (at start or mid-run) training goes
on: one warning, the lines stay buffered, and the thread retries with exponential backoff up to
`tracker.retry_max_s`, uploading everything once the server is back. `close()` registers lineage,
tries for up to `tracker.close_timeout_s` to upload the rest, the end artifacts and the final status,
and otherwise says to run `python -m nemotron.tracking sync <run_dir>`.

A requeued or resumed run finds `<run_dir>/tracking/mlflow_run_id` and continues that run.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Dict, Mapping, Optional

from nemotron.tracking.buffer import RunFiles
from nemotron.tracking.store import RunStore

FIRST_RETRY_S = 1.0
"""Wait before the first reconnection attempt; doubled after each failure up to tracker.retry_max_s."""


def _say(text: str) -> None:
    print(f"tracker: {text}", file=sys.stderr, flush=True)


class MlflowTracker:
    """What `open_tracker` returns for `tracker.kind=mlflow` on rank 0."""

    def __init__(self, cfg: Any, container: Dict[str, Any]) -> None:
        self.cfg, self.container = cfg, container
        self.files = RunFiles(cfg.run_dir)
        self.files.update_state(finalized=None, final_status=None)  # a new attempt of this run directory
        self.store = RunStore(cfg, container, self.files)
        self.interval = float(cfg.tracker.get("flush_interval_s", 2.0))
        self.retry_max = float(cfg.tracker.get("retry_max_s", 60.0))
        self.offline_since: Optional[float] = None
        self._backoff, self._next_try = FIRST_RETRY_S, 0.0
        self._wake, self._stop = threading.Event(), threading.Event()
        self._log_failed = False
        self._attempt()
        self._thread = threading.Thread(target=self._work, name="mlflow-tracker", daemon=True)
        self._thread.start()

    @classmethod
    def for_run(cls, cfg: Any) -> "MlflowTracker":
        from omegaconf import OmegaConf

        container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) \
            if OmegaConf.is_config(cfg) else dict(cfg)
        return cls(cfg, container)

    @property
    def run_id(self) -> Optional[str]:
        """The MLflow run id (None until the store has been reached once)."""
        return self.store.run_id or self.files.run_id

    # ---- the training loop's side --------------------------------------------------------------

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Buffer one step's metrics locally; never raises, never waits for the network."""
        try:
            self.files.append(step, metrics)
        except (OSError, TypeError, ValueError) as exc:
            if not self._log_failed:
                _say(f"warning: cannot write {self.files.metrics_path}: {exc}; metrics are not tracked")
                self._log_failed = True

    # ---- the upload thread ---------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            if not self._stop.is_set() and time.monotonic() >= self._next_try:
                self._attempt()

    def _attempt(self) -> bool:
        """Create/continue the run and upload pending lines; on failure schedule the next try."""
        try:
            self.store.ensure_run()
            self.store.push_metrics()
        except Exception as exc:  # noqa: BLE001 - any failure of the store must not reach training
            self._went_offline(exc)
            return False
        if self.offline_since is not None:
            _say(f"MLflow at {self.store.uri} is reachable again after "
                 f"{time.monotonic() - self.offline_since:.0f} s; buffered metrics uploaded")
            self.offline_since = None
        self._backoff = FIRST_RETRY_S
        return True

    def _went_offline(self, exc: BaseException) -> None:
        if self.offline_since is None:
            self.offline_since = time.monotonic()
            _say(f"warning: MLflow at {self.store.uri} is unavailable ({_short(exc)}); training continues, "
                 f"metrics are buffered in {self.files.metrics_path} and uploaded when it returns "
                 f"(or later: python -m nemotron.tracking sync {self.cfg.run_dir})")
        self._next_try = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.retry_max)

    # ---- the end -------------------------------------------------------------------------------

    def close(self, status: str = "FINISHED") -> None:
        """Stop the thread, register lineage, and finish the MLflow run (or leave it for `sync`)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=15)
        self.files.close()
        self.files.update_state(final_status=status)
        lineage = self._lineage(status)
        if self._finish(status, lineage):
            return
        left = self.files.pending()
        _say(f"warning: MLflow at {self.store.uri} is still unavailable: the run is not finished there"
             f"{f' and {left} step records are not uploaded' if left else ''}; when it is back, run: "
             f"python -m nemotron.tracking sync {self.cfg.run_dir}")

    def _lineage(self, status: str) -> Dict[str, Any]:
        from nemotron.tracking import lineage

        try:
            found = lineage.record(self.cfg, self.container, self.run_id, status == "FINISHED")
        except Exception as exc:  # noqa: BLE001 - lineage is best effort, never a failed run
            _say(f"warning: could not record artifact lineage: {_short(exc)}")
            return {}
        refs = {k: [f"{e['name']}@{e['version']}" for e in v] for k, v in found.items()}
        self.files.update_state(lineage=refs)
        return found

    def _finish(self, status: str, lineage: Dict[str, Any]) -> bool:
        deadline = time.monotonic() + float(self.cfg.tracker.get("close_timeout_s", 10.0))
        wait = FIRST_RETRY_S
        while True:
            try:
                self.store.finish(status, lineage)
                if any(not e.get("run_id") for entries in lineage.values() for e in entries):
                    _fill_registry_run_id(self.cfg, self.store.run_id)
                return True
            except Exception as exc:  # noqa: BLE001
                if time.monotonic() + wait > deadline:
                    self._went_offline(exc)
                    return False
            time.sleep(wait)
            wait = min(wait * 2, self.retry_max)


def _fill_registry_run_id(cfg: Any, run_id: Optional[str]) -> None:
    from nemotron.tracking.registry import Registry, registry_path

    if run_id:
        try:
            Registry(registry_path(cfg)).set_run_id(str(cfg.run_dir), run_id)
        except OSError:
            pass


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"
