"""Tracking never loses a run: unreachable or malformed URIs, odd experiment names; `sync` catches up.

These drive the tracker directly (no training), as the loop does: open, log per step, close.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nemotron.tracking import open_tracker
from nemotron.tracking.buffer import RunFiles
from nemotron.tracking.cli import main as tracking_cli


def _closed_port_uri() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed


def _track(cfg, steps=5):
    started = time.perf_counter()
    tracker = open_tracker(cfg, rank=0)
    for step in range(1, steps + 1):
        tracker.log(step, {"loss": 10.0 - step, "lr": 1e-3})
    tracker.close("FINISHED")
    return time.perf_counter() - started


def _config(tracked_config, *overrides):
    cfg = tracked_config("data.generate_tiny=false", "tracker.close_timeout_s=1", *overrides)
    Path(cfg.run_dir).mkdir(parents=True)
    OmegaConf.save(cfg, Path(cfg.run_dir) / "config.yaml")  # as the entry point writes it
    return cfg


def test_unreachable_server_buffers_then_sync_uploads_everything(tracked_config, mlflow_server, client, capfd):
    cfg = _config(tracked_config, f"tracker.uri={_closed_port_uri()}", "tracker.experiment=offline-then-sync")
    seconds = _track(cfg)
    err = capfd.readouterr().err
    assert "is unavailable" in err and "training continues" in err
    assert f"python -m nemotron.tracking sync {cfg.run_dir}" in err
    # Short HTTP timeouts: MLflow's defaults (7 retries, backoff factor 2) take minutes on a closed port;
    # ours take seconds. The bound is loose on purpose: a loaded 2-core CI machine took 8.4 s once.
    assert seconds < 60, seconds
    assert RunFiles(cfg.run_dir).pending() == 5 and RunFiles(cfg.run_dir).run_id is None

    assert tracking_cli(["sync", str(cfg.run_dir), "--uri", mlflow_server.uri]) == 0
    run_id = RunFiles(cfg.run_dir).run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["train.steps"] == str(cfg.train.steps)
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss")) == [1, 2, 3, 4, 5]
    assert RunFiles(cfg.run_dir).pending() == 0


def test_sync_with_store_still_down_says_so(tracked_config, capsys):
    cfg = _config(tracked_config, f"tracker.uri={_closed_port_uri()}")
    _track(cfg, steps=2)
    assert tracking_cli(["sync", str(cfg.run_dir)]) == 1
    assert "error: could not sync" in capsys.readouterr().err


@pytest.mark.parametrize("uri, problem", [
    ("localhost:5000", "looks like host:port without a scheme"),
    ("http://", "names no host"),
    ("http://127.0.0.1:port", "invalid port"),
    ("htp://127.0.0.1:5000", "MLflow has no store for scheme 'htp'"),
])
def test_malformed_uri_is_named_and_metrics_are_kept(tracked_config, capfd, uri, problem):
    cfg = _config(tracked_config, f"tracker.uri='{uri}'")
    _track(cfg)
    err = capfd.readouterr().err
    assert problem in err and err.count("is unavailable") == 1
    assert [r["step"] for _, r in RunFiles(cfg.run_dir).records()] == [1, 2, 3, 4, 5]


def test_experiment_name_with_odd_characters_is_used_as_given(tracked_config, mlflow_server, client):
    name = "odd name/ü & ?#% [x]"
    cfg = _config(tracked_config, f"tracker.uri={mlflow_server.uri}", f"tracker.experiment='{name}'")
    _track(cfg)
    run = client.get_run(RunFiles(cfg.run_dir).run_id)
    assert client.get_experiment(run.info.experiment_id).name == name


def test_too_long_experiment_name_is_a_clear_warning(tracked_config, mlflow_server, capfd):
    cfg = _config(tracked_config, f"tracker.uri={mlflow_server.uri}", f"tracker.experiment={'e' * 600}")
    _track(cfg)
    assert "tracker.experiment: the experiment name is 600 characters long (MLflow allows 500)" in capfd.readouterr().err
    assert RunFiles(cfg.run_dir).pending() == 5


def test_only_rank_zero_tracks(tracked_config, mlflow_server):
    cfg = _config(tracked_config, f"tracker.uri={mlflow_server.uri}")
    tracker = open_tracker(cfg, rank=1)
    tracker.log(1, {"loss": 1.0})
    tracker.close()
    assert tracker.run_id is None and not RunFiles(cfg.run_dir).metrics_path.exists()
