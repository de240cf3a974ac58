"""Where runs are tracked: URI and experiment precedence, URI checks, light imports."""

from __future__ import annotations

import subprocess
import sys

from omegaconf import OmegaConf

from nemotron.tracking.settings import experiment_name, tracking_uri, uri_problem


def _cfg(tmp_path, **tracker):
    return OmegaConf.create({"tracker": {"uri": None, "experiment": None, **tracker},
                             "paths": {"output_root": str(tmp_path / "out")}, "recipe": {"name": "gpt/pretrain"}})


def test_uri_precedence_config_then_env_then_sqlite_under_output_root(tmp_path, monkeypatch):
    assert tracking_uri(_cfg(tmp_path)) == f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert tracking_uri(_cfg(tmp_path)) == "http://env:5000"
    assert tracking_uri(_cfg(tmp_path, uri="http://cfg:5000")) == "http://cfg:5000"


def test_experiment_precedence_config_then_env_then_recipe(tmp_path, monkeypatch):
    assert experiment_name(_cfg(tmp_path)) == "gpt/pretrain"
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    assert experiment_name(_cfg(tmp_path)) == "from-env"
    assert experiment_name(_cfg(tmp_path, experiment="mine")) == "mine"


def test_uri_problems_are_named_and_good_uris_pass():
    for good in ("http://127.0.0.1:5000", "https://mlflow.example.com", "sqlite:////tmp/a.db",
                 "databricks", "file:///tmp/mlruns", "/tmp/mlruns"):
        assert uri_problem(good) is None, good
    assert "without a scheme" in uri_problem("localhost:5000")
    assert "names no host" in uri_problem("http://")
    assert "not a URI" in uri_problem("http://[bad")
    assert "empty" in uri_problem(" ")


def test_light_modules_import_no_mlflow_torch_or_megatron():
    code = ("import sys, nemotron.tracking, nemotron.tracking.sweep, nemotron.tracking.secrets, "
            "nemotron.tracking.registry, nemotron.tracking.settings, nemotron.tracking.params; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'torch', 'megatron', 'matplotlib'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
