"""Work a sweep defers until every member has passed its checks, so a refused sweep creates nothing.

Hydra calls `on_multirun_start` callbacks before the launcher has composed and checked a single member;
a callback that would create something (the MLflow sweep parent run) registers it with `defer`, and the
launcher calls `members_checked` once all members passed (nothing runs for a refused sweep). Imports
nothing: both the tracking callback and the launch layer use it.
"""

from __future__ import annotations

from typing import Callable, List

_PENDING: List[Callable[[], None]] = []


def defer(work: Callable[[], None]) -> None:
    """Run `work` once the sweep's members are known to be valid."""
    _PENDING.append(work)


def members_checked() -> None:
    """Every member passed: run the deferred work, in order, once."""
    while _PENDING:
        _PENDING.pop(0)()


def sweep_refused() -> None:
    """The sweep was refused: drop the deferred work."""
    _PENDING.clear()
