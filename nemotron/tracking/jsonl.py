"""A tracker that appends one JSON object per logged step to a file (`tracker=jsonl`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping


class JsonlTracker:
    """Appends `{"step": ..., "time": ..., <metrics>}` lines to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    @classmethod
    def for_run(cls, cfg: Any) -> "JsonlTracker":
        return cls(Path(cfg.tracker.path or Path(cfg.run_dir) / "metrics.jsonl"))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        record = {"step": step, "time": time.time(), **{k: float(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self, status: str = "FINISHED") -> None:
        if not self._file.closed:
            self._file.write(json.dumps({"status": status, "time": time.time()}) + "\n")
            self._file.close()
