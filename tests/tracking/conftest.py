"""Fixtures for the tracking tests: tracked training configs. The session's real `mlflow server`
(fixture `mlflow_server`) lives in tests/conftest.py, shared with the Slurm tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


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
