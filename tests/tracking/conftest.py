"""Fixtures for the tracking tests: one real `mlflow server` per session, and tracked training configs.

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

import pytest
from omegaconf import DictConfig, OmegaConf

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """The session's MLflow server (started once)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow_server"))
    server.start_s = server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def client(mlflow_server):
    """An MlflowClient reading the session server."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.uri)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """Generated tiny data shared by the in-process training runs."""
    return tmp_path_factory.mktemp("tracking_data")


@pytest.fixture(autouse=True)
def _clean_mlflow_env(monkeypatch):
    """No tracking settings leak in from the environment the tests run in."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID",
                 "NEMOTRON_MLFLOW_PARENT_RUN_ID", "NEMOTRON_SWEEP_MEMBER"):
        monkeypatch.delenv(name, raising=False)


def resolved_config(root: Path, data_dir: Path, *overrides: str, run_dir: Path | None = None) -> DictConfig:
    """A resolved gpt/pretrain config tracked with MLflow, outputs under `root`, as the recipe receives it."""
    from nemotron.config.compose import compose_run

    base = ["+recipe=gpt/pretrain", "train.num_threads=1", "tracker=mlflow", f"data.cache_dir={data_dir}",
            f"paths.output_root={root / 'outputs'}", "tracker.flush_interval_s=0.2", "tracker.close_timeout_s=5"]
    cfg = compose_run([*base, *overrides], run_dir=run_dir or root / "run")
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


@pytest.fixture
def tracked_config(data_dir, tmp_path):
    """tracked_config(*overrides, run_dir=...): `resolved_config` under this test's tmp_path."""
    return lambda *overrides, run_dir=None: resolved_config(tmp_path, data_dir, *overrides, run_dir=run_dir)


@pytest.fixture(scope="session")
def config_factory(data_dir):
    """config_factory(root, *overrides, run_dir=...) for fixtures wider than one test."""
    return lambda root, *overrides, run_dir=None: resolved_config(root, data_dir, *overrides, run_dir=run_dir)
