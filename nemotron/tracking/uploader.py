"""The MLflow side of one training run, in a process of its own (`python -m nemotron.tracking.uploader`).

The recipe script starts this process first thing (`mlflow_tracker.prestart`, with `--uri`: it
imports mlflow and opens the store at once), and the training process's `MlflowTracker` sends it the
resolved config as one JSON line on stdin when it opens; from then on the two share only files: training appends step
records to `<run_dir>/tracking/metrics.jsonl`, this process uploads them. So importing mlflow,
creating a new store and the run (seconds) overlap importing torch and building the model, on
another core, and never hold the training loop's GIL.

Every `tracker.flush_interval_s` it creates/continues the run and uploads new lines. When the store
is unreachable (at start or mid-run) training goes on: one warning, the lines stay buffered, and it
retries with exponential backoff up to `tracker.retry_max_s`. The line `close <STATUS>` on stdin
ends the run: lineage is registered, and for up to `tracker.close_timeout_s` it tries to upload the
rest, the end artifacts and the final status, else says to run `python -m nemotron.tracking sync`.
End of stdin without `close` (the training process died): one last upload of the buffered lines,
the run is left for a requeue or `sync`. Stop signals (Ctrl-C, SIGTERM, SIGUSR2) are ignored: they
reach the whole process group, and the training process answers them with `close KILLED`. Exit status 0 when the run was finished in MLflow, 1 if not.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from nemotron.tracking.buffer import RunFiles
from nemotron.tracking.store import RunStore

FIRST_RETRY_S = 1.0
"""Wait before the first reconnection attempt; doubled after each failure up to tracker.retry_max_s."""


def say(text: str) -> None:
    print(f"tracker: {text}", file=sys.stderr, flush=True)


def short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


class Uploader:
    """Uploads one run directory's buffered metrics while training runs, and finishes the run."""

    def __init__(self, cfg: Any, container: Dict[str, Any]) -> None:
        self.cfg, self.container = cfg, container
        self.files = RunFiles(cfg.run_dir)
        self.store = RunStore(cfg, container, self.files)
        self.interval = float(cfg.tracker.get("flush_interval_s", 2.0))
        self.retry_max = float(cfg.tracker.get("retry_max_s", 60.0))
        self.offline_since: Optional[float] = None
        self._backoff, self._next_try = FIRST_RETRY_S, 0.0

    # ---- while training runs -------------------------------------------------------------------

    def follow(self, stop: threading.Event) -> None:
        """Upload every interval until `stop` is set (the close line or the end of stdin)."""
        self.attempt()
        while not stop.wait(self.interval):
            if time.monotonic() >= self._next_try:
                self.attempt()

    def attempt(self) -> bool:
        """Create/continue the run and upload pending lines; on failure schedule the next try."""
        try:
            self.store.ensure_run()
            self.store.push_metrics()
        except Exception as exc:  # noqa: BLE001 - any failure of the store must not reach training
            self._went_offline(exc)
            return False
        if self.offline_since is not None:
            say(f"MLflow at {self.store.uri} is reachable again after "
                f"{time.monotonic() - self.offline_since:.0f} s; buffered metrics uploaded")
            self.offline_since = None
        self._backoff = FIRST_RETRY_S
        return True

    def _went_offline(self, exc: BaseException) -> None:
        if self.offline_since is None:
            self.offline_since = time.monotonic()
            say(f"warning: MLflow at {self.store.uri} is unavailable ({short(exc)}); training continues, "
                f"metrics are buffered in {self.files.metrics_path} and uploaded when it returns "
                f"(or later: python -m nemotron.tracking sync {self.cfg.run_dir})")
        self._next_try = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.retry_max)

    # ---- the end -------------------------------------------------------------------------------

    def close(self, status: str) -> bool:
        """Draw `<run_dir>/loss.png`, register lineage and finish the MLflow run (or say how to finish it later)."""
        self.store.draw_picture()  # before the store is reached: the picture does not wait for a server
        lineage = self._lineage(status)
        if self._finish(status, lineage):
            return True
        left = self.files.pending()
        say(f"warning: MLflow at {self.store.uri} is still unavailable: the run is not finished there"
            f"{f' and {left} step records are not uploaded' if left else ''}; when it is back, run: "
            f"python -m nemotron.tracking sync {self.cfg.run_dir}")
        return False

    def _lineage(self, status: str) -> Dict[str, Any]:
        from nemotron.tracking import lineage

        try:
            found = lineage.record(self.cfg, self.container, self.store.run_id or self.files.run_id,
                                   status == "FINISHED")
        except Exception as exc:  # noqa: BLE001 - lineage is best effort, never a failed run
            say(f"warning: could not record artifact lineage: {short(exc)}")
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


def _warm_end_imports() -> None:
    """Import what the end needs (the run's picture) while training runs, not after it."""
    try:
        from nemotron.tracking.plots import warm

        warm()
    except Exception:  # noqa: BLE001 - the end reports its own failure
        pass


def _fill_registry_run_id(cfg: Any, run_id: Optional[str]) -> None:
    from nemotron.tracking.registry import Registry, registry_path

    if run_id:
        try:
            Registry(registry_path(cfg)).set_run_id(str(cfg.run_dir), run_id)
        except OSError:
            pass


def _read_commands(stream: Any, status: List[Optional[str]], stop: threading.Event) -> None:
    """`close <STATUS>` sets the status; either it or the end of the stream sets `stop`."""
    for line in stream:
        if line.startswith("close "):
            status[0] = line.split(maxsplit=1)[1].strip()
            break
    stop.set()


def _ignore_stop_signals() -> None:
    """Ctrl-C, scancel and Slurm's warning signal reach the whole process group: the training process
    handles them (a last checkpoint, then `close KILLED`); this process waits for that line."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)


def _warm(uri: str) -> None:
    """While the training process imports torch: import mlflow, open the store (a new sqlite store creates
    its tables here), import the end's plotting. Failures are the first real attempt's to report."""
    from nemotron.tracking.store import connect

    try:
        connect(uri).search_experiments(max_results=1)
    except Exception:  # noqa: BLE001
        pass
    _warm_end_imports()


def main() -> int:
    from omegaconf import OmegaConf

    _ignore_stop_signals()
    if sys.argv[1:2] == ["--uri"]:
        _warm(sys.argv[2])
    line = sys.stdin.readline()
    if not line:  # the training process ended before it opened the tracker
        return 1
    hello = json.loads(line)
    uploader = Uploader(OmegaConf.create(hello["container"]), hello["container"])
    status: List[Optional[str]] = [None]
    stop = threading.Event()
    threading.Thread(target=_read_commands, args=(sys.stdin, status, stop), daemon=True).start()
    uploader.follow(stop)
    if status[0] is None:  # the training process is gone without closing: keep what it logged
        uploader.attempt()
        return 1
    return 0 if uploader.close(status[0]) else 1


if __name__ == "__main__":
    from nemotron.common.shutdown import exit_quickly

    exit_quickly(main())
