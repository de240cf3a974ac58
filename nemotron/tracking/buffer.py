"""The run's local tracking files under `<run_dir>/tracking/`: metrics first, the server second (stdlib only).

- `metrics.jsonl`: every logged step, `{"step": 3, "time": 1.7e9, "loss": 5.1, ...}`, appended and
  flushed before anything is sent, so a dead server or a killed process loses nothing.
- `mlflow_run_id`: the MLflow run this run directory belongs to; a requeued or resumed run reads it
  and continues the same MLflow run.
- `state.json`: how many bytes of metrics.jsonl are in MLflow, which artifacts are up, and the final
  status once training ended, so `python -m nemotron.tracking sync <run_dir>` can finish the job.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from nemotron.common.atomic_files import write_text_atomic

TRACKING_DIR = "tracking"
"""Sub-directory of the run directory holding these files."""
METRICS_FILE = "metrics.jsonl"
RUN_ID_FILE = "mlflow_run_id"
STATE_FILE = "state.json"


def tracking_dir(run_dir: Any) -> Path:
    """`<run_dir>/tracking`."""
    return Path(run_dir) / TRACKING_DIR


def _atomic_write(path: Path, text: str) -> None:
    write_text_atomic(path, text)  # the run id and sync state: what links this run directory to its MLflow run


class RunFiles:
    """Reads and writes the files above for one run directory."""

    def __init__(self, run_dir: Any) -> None:
        self.dir = tracking_dir(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.dir / METRICS_FILE
        self._out = None

    # ---- metrics -------------------------------------------------------------------------------

    def append(self, step: int, metrics: Mapping[str, float]) -> None:
        """Write one step record and flush it to the OS."""
        if self._out is None:
            self._out = self.metrics_path.open("a", encoding="utf-8")
        record = {"step": int(step), "time": time.time(), **{k: float(v) for k, v in metrics.items()}}
        self._out.write(json.dumps(record) + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def records(self, offset: int = 0) -> Iterator[Tuple[int, Dict[str, Any]]]:
        """(byte offset after the line, record) for complete lines from byte `offset` on.

        A torn last line (a process killed mid-write) is not read; a line that is not JSON is skipped.
        """
        if not self.metrics_path.exists():
            return
        with self.metrics_path.open("rb") as lines:
            lines.seek(offset)
            for line in lines:
                if not line.endswith(b"\n"):
                    return
                offset += len(line)
                try:
                    yield offset, json.loads(line)
                except json.JSONDecodeError:
                    continue

    def series(self, key: str) -> List[Tuple[int, float]]:
        """(step, value) of `key`, the last value logged for each step (a resumed run may repeat steps)."""
        by_step: Dict[int, float] = {}
        for _, record in self.records():
            value = record.get(key)
            if isinstance(value, (int, float)) and "step" in record and not math.isnan(value):
                by_step[int(record["step"])] = float(value)
        return sorted(by_step.items())

    # ---- run id and state ----------------------------------------------------------------------

    @property
    def run_id(self) -> Optional[str]:
        path = self.dir / RUN_ID_FILE
        text = path.read_text(encoding="utf-8").strip() if path.exists() else ""
        return text or None

    @run_id.setter
    def run_id(self, value: str) -> None:
        _atomic_write(self.dir / RUN_ID_FILE, value + "\n")

    def state(self) -> Dict[str, Any]:
        path = self.dir / STATE_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except json.JSONDecodeError:
            return {}

    def update_state(self, **changes: Any) -> Dict[str, Any]:
        state = {**self.state(), **changes}
        _atomic_write(self.dir / STATE_FILE, json.dumps(state, indent=1, sort_keys=True) + "\n")
        return state

    def synced_offset(self) -> int:
        """Bytes of metrics.jsonl already confirmed in MLflow."""
        return int(self.state().get("synced_bytes", 0))

    def pending(self) -> int:
        """Step records written locally but not yet confirmed in MLflow."""
        return sum(1 for _ in self.records(self.synced_offset()))
