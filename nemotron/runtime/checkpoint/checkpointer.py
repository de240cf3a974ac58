"""The loop's checkpoint handling for one run, as one object: where it resumes from, restoring,
when a save is due, saving. The files and their format are `store`'s (nemotron/runtime/checkpoint/store.py)."""

from __future__ import annotations

from typing import Any, Optional

from nemotron.runtime.checkpoint import store
from nemotron.runtime.checkpoint.store import Found, Position


class Checkpointer:
    """Checkpoints of the run `cfg` describes (`checkpoint.*`)."""

    def __init__(self, cfg: Any) -> None:
        """Looks for the checkpoint to resume from (all ranks: rank 0 decides)."""
        self.cfg = cfg
        self.found: Optional[Found] = store.find_resume(cfg)
        """The checkpoint this run resumes from; None for a fresh start."""

    def tracker_config(self) -> Any:
        """The run config the tracker opens with (continuing this run's tracked run on resume)."""
        return store.tracker_config(self.cfg, self.found)

    def resume(self, model: Any, optimizer: Any, scheduler: Any) -> Position:
        """Restore `found` into the model, optimizer and schedule; where training continues."""
        if self.found is None:
            return Position()
        return store.load(self.found, self.cfg, model, optimizer, scheduler)

    def save_due(self, step: int) -> bool:
        """Whether step `step` ends with a save (`checkpoint.save_interval`, `save_at_end`)."""
        ck = self.cfg.checkpoint
        return (ck.save_interval > 0 and step % ck.save_interval == 0) or (
            ck.save_at_end and step == self.cfg.train.steps
        )

    def save(self, run: Any, tracker: Any) -> None:
        """Save the run's model, optimizer, schedule and position (all ranks: the save is collective)."""
        store.save(self.cfg, run.model, run.optimizer, run.scheduler, run.position, tracker)
