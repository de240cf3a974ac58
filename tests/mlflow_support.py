"""A real MLflow tracking server a test session owns (tests/conftest.py's `mlflow_server` fixture).

The server runs on 127.0.0.1 at a free port with a sqlite backend under the session's temp dir,
`--workers 1` and MLflow's job runner off (it is ready in ~5 s instead of ~20 s). It is started in
its own process group, and stopped by killing that group (its PID), never by name: `stop()` and
`start()` let a test take it away and bring it back on the same port and store mid-run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A real tracking server the test session owns (by PID)."""

    def __init__(self, root: Path) -> None:
        self.root, self.port, self.proc = root, _free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = root / "server.log"

    def start(self) -> float:
        """Start (or restart) on the same port and store; returns seconds until healthy."""
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
        argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}",
                "--artifacts-destination", str(self.root / "artifacts"), "--workers", "1"]
        started = time.perf_counter()
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        while time.perf_counter() - started < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=1) as reply:
                    if reply.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {START_TIMEOUT_S} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """Kill the server's process group (the server and its uvicorn worker), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
