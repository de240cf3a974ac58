"""The tracker seam: the one place the runtime sends metrics to.

The runtime calls `open_tracker(cfg)` once per run (on every rank; only rank 0 writes), then
`tracker.log(step, {...})` per log interval and `tracker.close(status)` at the end. A backend is a
small class with those two methods, chosen by `tracker.kind`: `mlflow` (the default; see
`mlflow_tracker` and docs/tracking.md), `jsonl` or `none`. Whatever the kind, rank 0's tracker draws
`<run_dir>/loss.png` when it closes (`plots`). Backends import their heavy dependencies
lazily, so importing this package stays cheap (no mlflow, torch or megatron).

Commands (`python -m nemotron.tracking --help`): `sync` a run directory's buffered metrics, `compare`
the members of a sweep, show an artifact's `lineage`, list `artifacts`.
"""

from __future__ import annotations

import sys
from typing import Any, Mapping, Protocol

from nemotron.tracking.jsonl import JsonlTracker, PictureTracker


class Tracker(Protocol):
    """What the runtime may call on a tracker."""

    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def close(self, status: str = "FINISHED") -> None: ...


class NullTracker:
    """Tracks nothing (every rank but 0)."""

    run_id = None
    """No MLflow run (the mlflow tracker has its run id here)."""

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def close(self, status: str = "FINISHED") -> None:
        pass


def open_tracker(cfg: Any, rank: int = 0) -> Tracker:
    """The tracker `cfg.tracker.kind` names (`none`: one that only draws the picture); a NullTracker on
    ranks other than 0."""
    kind = cfg.tracker.kind
    if rank != 0:
        return NullTracker()
    if kind == "none":
        return PictureTracker.for_run(cfg)
    if kind == "jsonl":
        return JsonlTracker.for_run(cfg)
    if kind == "mlflow":
        return _open_mlflow(cfg)
    raise ValueError(f"tracker.kind={kind!r} is not a known tracker (choose mlflow, jsonl or none)")


def _open_mlflow(cfg: Any) -> Tracker:
    """The MLflow tracker; if even its local files cannot be set up, a warning and only the picture."""
    from nemotron.tracking.mlflow_tracker import MlflowTracker

    try:
        return MlflowTracker.for_run(cfg)
    except Exception as exc:  # noqa: BLE001 - tracking never kills training
        print(f"tracker: warning: MLflow tracking is off for this run: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)
        return PictureTracker.for_run(cfg)
