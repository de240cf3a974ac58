"""The tracker seam: the one place the runtime sends metrics to.

The runtime calls `open_tracker(cfg)` once per run (on every rank; only rank 0 writes), then
`tracker.log(step, {...})` per log interval and `tracker.close(status)` at the end. A backend is a
small class with those two methods, chosen by `tracker.kind`. Backends import their heavy
dependencies lazily, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from nemotron.tracking.jsonl import JsonlTracker


class Tracker(Protocol):
    """What the runtime may call on a tracker."""

    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def close(self, status: str = "FINISHED") -> None: ...


class NullTracker:
    """Tracks nothing (`tracker=none`, and every rank but 0)."""

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def close(self, status: str = "FINISHED") -> None:
        pass


def open_tracker(cfg: Any, rank: int = 0) -> Tracker:
    """The tracker `cfg.tracker.kind` names; a NullTracker on ranks other than 0."""
    kind = cfg.tracker.kind
    if rank != 0 or kind == "none":
        return NullTracker()
    if kind == "jsonl":
        return JsonlTracker.for_run(cfg)
    raise ValueError(f"tracker.kind={kind!r} is not a known tracker (choose none or jsonl)")
