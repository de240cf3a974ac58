"""A tracker that appends one JSON object per logged step to a file (`tracker=jsonl`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping, Optional

from nemotron.tracking.plots import PICTURE, picture_title, plotted, read_series, series_of, write_run_picture


class JsonlTracker:
    """Appends `{"step": ..., "time": ..., <metrics>}` lines to `path`; on close draws the file's series
    to `picture` (the run directory's `loss.png`) when one is given."""

    def __init__(self, path: Path, picture: Optional[Path] = None, title: str = "") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self.picture, self.title = picture, title

    @classmethod
    def for_run(cls, cfg: Any) -> "JsonlTracker":
        path = Path(cfg.tracker.path or Path(cfg.run_dir) / "metrics.jsonl")
        return cls(path, Path(cfg.run_dir) / PICTURE, picture_title(cfg))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        record = {"step": step, "time": time.time(), **{k: float(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self, status: str = "FINISHED") -> None:
        if self._file.closed:
            return
        self._file.write(json.dumps({"status": status, "time": time.time()}) + "\n")
        self._file.close()
        if self.picture is not None:
            write_run_picture(read_series(self.path), self.picture, self.title)


class PictureTracker:
    """`tracker=none` on rank 0: tracks nothing, keeps the plotted figures in memory and draws them to
    `picture` on close (the run directory's `loss.png`)."""

    run_id = None

    def __init__(self, picture: Path, title: str = "") -> None:
        self.picture, self.title = Path(picture), title
        self.records: list = []
        self._closed = False

    @classmethod
    def for_run(cls, cfg: Any) -> "PictureTracker":
        return cls(Path(cfg.run_dir) / PICTURE, picture_title(cfg))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        kept = {k: float(v) for k, v in metrics.items() if plotted(k)}
        if kept:
            self.records.append({"step": step, **kept})

    def close(self, status: str = "FINISHED") -> None:
        if self._closed:
            return
        self._closed = True
        write_run_picture(series_of(self.records), self.picture, self.title)
