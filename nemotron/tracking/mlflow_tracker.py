"""The MLflow tracker (`tracker=mlflow`, the default): one MLflow run per training run, never in the way.

The training process only appends step records to `<run_dir>/tracking/metrics.jsonl` (flushed
before anything is sent, so nothing is lost). Everything MLflow does (importing mlflow, creating the
store and the run, uploading, retrying while the server is away, the end artifacts, lineage and the
final status) happens in a companion process, `nemotron.tracking.uploader`, which the recipe script
starts first thing (`prestart`, before torch is imported) and the tracker hands the config when it
opens: a first run does not wait seconds for mlflow and a new store, and the upload never takes the
training loop's GIL. `close()` tells it the final status and waits for it (bounded by
`tracker.close_timeout_s` plus the time lineage needs); if the training process dies instead, the
companion sees its stdin end, uploads what was logged and exits, so it never outlives training.

A requeued or resumed run finds `<run_dir>/tracking/mlflow_run_id` and continues that run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from nemotron.tracking.buffer import RunFiles
from nemotron.tracking.settings import tracking_uri

UPLOADER = "nemotron.tracking.uploader"
"""The companion process's module (`python -m`)."""
CLOSE_MARGIN_S = 120.0
"""How long, beyond tracker.close_timeout_s, close() waits for lineage hashing and the last upload."""
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
"""The folder holding this `nemotron` package: the companion imports the same code (a job's snapshot)."""


def _say(text: str) -> None:
    print(f"tracker: {text}", file=sys.stderr, flush=True)


def _companion_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    env["PYTHONSAFEPATH"] = "1"  # `-m` would put the cwd first (a Slurm job's is the submit checkout, not the snapshot)
    return env


_PRESTARTED: Dict[str, subprocess.Popen] = {}
"""run_dir -> the uploader `prestart` started for it, waiting for its config."""


def _spawn(uri: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", UPLOADER, "--uri", uri], stdin=subprocess.PIPE, text=True,
                            env=_companion_env(), close_fds=True)


def prestart(cfg: Any) -> None:
    """Start the uploader of `cfg`'s run now, before the training process imports torch: it imports mlflow
    and opens the store meanwhile, on another core, then waits for `MlflowTracker` to send the config.
    Only for `tracker.kind=mlflow` on rank 0; a tracker opened without it starts its own."""
    from nemotron.tracking.settings import tracking_uri

    if cfg.tracker.kind == "mlflow" and os.environ.get("RANK", "0") == "0":
        _PRESTARTED[str(cfg.run_dir)] = _spawn(tracking_uri(cfg))


class MlflowTracker:
    """What `open_tracker` returns for `tracker.kind=mlflow` on rank 0."""

    def __init__(self, cfg: Any, container: Dict[str, Any]) -> None:
        self.cfg = cfg
        self.files = RunFiles(cfg.run_dir)
        self.files.update_state(finalized=None, final_status=None)  # a new attempt of this run directory
        self._log_failed, self._closed = False, False
        self._opened = time.time()
        early = _PRESTARTED.pop(str(cfg.run_dir), None)
        self.uploader = early if early is not None and early.poll() is None else _spawn(tracking_uri(cfg))
        self.uploader.stdin.write(json.dumps({"container": container}) + "\n")
        self.uploader.stdin.flush()

    @classmethod
    def for_run(cls, cfg: Any) -> "MlflowTracker":
        from omegaconf import OmegaConf

        container = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) \
            if OmegaConf.is_config(cfg) else dict(cfg)
        return cls(cfg, container)

    @property
    def run_id(self) -> Optional[str]:
        """The MLflow run id (None until the companion has reached the store once)."""
        return self.files.run_id

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Buffer one step's metrics locally; never raises, never waits for the network."""
        try:
            self.files.append(step, metrics)
        except (OSError, TypeError, ValueError) as exc:
            if not self._log_failed:
                _say(f"warning: cannot write {self.files.metrics_path}: {exc}; metrics are not tracked")
                self._log_failed = True

    def close(self, status: str = "FINISHED") -> None:
        """Send the final status to the companion and wait for it to finish the MLflow run."""
        if self._closed:
            return
        self._closed = True
        self.files.close()
        self.files.update_state(final_status=status)
        try:
            self.uploader.stdin.write(f"close {status}\n")
            self.uploader.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # it has exited already; its own message said why
        timeout = float(self.cfg.tracker.get("close_timeout_s", 10.0)) + CLOSE_MARGIN_S
        try:
            self.uploader.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.uploader.kill()
            self.uploader.wait()
            _say(f"warning: the MLflow upload did not end within {timeout:.0f} s; when the store answers, "
                 f"run: python -m nemotron.tracking sync {self.cfg.run_dir}")
        self._picture_if_missing()

    def _picture_if_missing(self) -> None:
        """The companion draws `<run_dir>/loss.png`; if it could not (it died, or was killed above), draw
        it here from the metrics file."""
        from nemotron.tracking.plots import PICTURE

        picture = Path(str(self.cfg.run_dir)) / PICTURE
        if picture.is_file() and picture.stat().st_mtime >= self._opened:
            return
        from nemotron.tracking.plots import picture_title, read_series, write_run_picture

        if self.files.metrics_path.is_file():
            write_run_picture(read_series(self.files.metrics_path), picture, picture_title(self.cfg))
