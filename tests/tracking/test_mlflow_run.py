"""Real training runs (in-process) tracked on a real MLflow server, read back with MlflowClient.

One module-scoped run is shared by the content tests and then resumed; a separate run loses its
server mid-run. Each run costs ~2-4 s here (plus ~8 s of megatron import once per session).
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
from picture_support import shown

from nemotron.tracking.buffer import RunFiles

SECRET_ENV = "hf_env_secret_value_123"
SECRET_CFG = "sk-config-secret-987"
LONG = "x" * 7000


def _train(cfg):
    from nemotron.runtime.stages.pretrain import run

    return run(cfg)


def _artifact_text(client, run_id, path, tmp_path):
    return Path(client.download_artifacts(run_id, path, str(tmp_path))).read_text()


def _steps(client, run_id, key):
    return sorted(m.step for m in client.get_metric_history(run_id, key))


@pytest.fixture(scope="module")
def first_run(config_factory, mlflow_server, tmp_path_factory):
    """A 4-step run with secrets, a too-long value, Slurm variables and a train.log; (cfg, run_id)."""
    root = tmp_path_factory.mktemp("first_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_JOB_ID", "4242")
        mp.setenv("SLURM_ARRAY_TASK_ID", "3")
        mp.setenv("HF_TOKEN", SECRET_ENV)
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
            mp.delenv(name, raising=False)
        cfg = config_factory(root, f"tracker.uri={mlflow_server.uri}", "tracker.experiment=tracking-tests",
                             "train.steps=4", "train.eval_interval=2", "train.log_interval=2",
                             f"+cluster.env.WANDB_API_KEY={SECRET_CFG}", "+cluster.env.HUB=${oc.env:HF_TOKEN}",
                             f"+cluster.env.NOTE={LONG}")
        Path(cfg.run_dir).mkdir(parents=True)
        (Path(cfg.run_dir) / "train.log").write_text(f"starting\nHF_TOKEN={SECRET_ENV}\nkey {SECRET_CFG}\n")
        _train(cfg)
    return cfg, RunFiles(cfg.run_dir).run_id


def test_params_are_the_flattened_config_without_secrets_and_within_limits(first_run, client):
    cfg, run_id = first_run
    params = client.get_run(run_id).data.params
    assert params["model.num_layers"] == str(cfg.model.num_layers)
    assert params["optim.lr"] == str(cfg.optim.lr) and params["recipe.name"] == "gpt/pretrain"
    assert params["cluster.env.WANDB_API_KEY"] == "<redacted>" and params["cluster.env.HUB"] == "<redacted>"
    assert len(params["cluster.env.NOTE"]) <= 6000
    assert params["cluster.env.NOTE"].endswith("chars; full value in config/resolved.yaml]")
    assert not [k for k, v in params.items() if SECRET_ENV in v or SECRET_CFG in v]


def test_tags_name_recipe_code_slurm_and_host(first_run, client):
    tags = client.get_run(first_run[1]).data.tags
    assert tags["nemotron.recipe"] == tags["nemotron.runspec"] == "gpt/pretrain"
    assert re.fullmatch(r"[0-9a-f]{40}", tags["nemotron.git.commit"]) and tags["nemotron.git.dirty"] in ("true", "false")
    assert tags["slurm.job_id"] == "4242" and tags["slurm.array_task_id"] == "3"
    assert tags["host"] == socket.gethostname() and tags["nemotron.cluster"] == "local"
    assert tags["nemotron.inputs"].startswith("data/tiny@") and tags["nemotron.outputs"].startswith("checkpoint/gpt/pretrain@")


def test_every_step_is_a_metric_point(first_run, client):
    run = client.get_run(first_run[1])
    assert run.info.status == "FINISHED"
    for key in ("loss", "lr", "grad_norm", "tokens_per_s"):
        assert _steps(client, run.info.run_id, key) == [1, 2, 3, 4], key
    assert _steps(client, run.info.run_id, "val_loss") == [2, 4]


def test_artifacts_hold_full_config_runspec_log_and_plot_without_secrets(first_run, client, tmp_path):
    run_id = first_run[1]
    config = _artifact_text(client, run_id, "config/resolved.yaml", tmp_path)
    assert LONG in config and "<redacted>" in config
    runspec = _artifact_text(client, run_id, "config/runspec.toml", tmp_path)
    assert runspec.startswith("# /// script") and 'name = "gpt/pretrain"' in runspec
    log = _artifact_text(client, run_id, "logs/train.log", tmp_path)
    assert "starting" in log and "HF_TOKEN=<redacted>" in log
    for text in (config, runspec, log):
        assert SECRET_ENV not in text and SECRET_CFG not in text
    plots = [a.path for a in client.list_artifacts(run_id, "plots")]
    assert plots == ["plots/loss.png"]
    inputs = client.get_run(run_id).inputs.dataset_inputs
    assert [d.dataset.name.split("@")[0] for d in inputs] == ["data/tiny"]


def test_the_run_directory_has_the_picture_mlflow_has(first_run, client, tmp_path):
    cfg, run_id = first_run
    picture = Path(cfg.run_dir) / "loss.png"
    assert shown(picture) == {"loss": [("loss", 4), ("val_loss", 2)], "learning rate": [("lr", 4)]}
    uploaded = Path(client.download_artifacts(run_id, "plots/loss.png", str(tmp_path)))
    assert uploaded.read_bytes() == picture.read_bytes()


def test_resume_continues_the_same_mlflow_run(first_run, config_factory, client):
    cfg, run_id = first_run
    more = config_factory(Path(cfg.paths.output_root).parent, f"tracker.uri={cfg.tracker.uri}",
                          "tracker.experiment=tracking-tests", "train.steps=6", run_dir=Path(cfg.run_dir))
    result = _train(more)
    assert result.start_step == 4  # resumed from the checkpoint, not from scratch
    assert RunFiles(cfg.run_dir).run_id == run_id
    run = client.get_run(run_id)
    assert _steps(client, run_id, "loss") == [1, 2, 3, 4, 5, 6]
    assert shown(Path(cfg.run_dir) / "loss.png")["loss"][0] == ("loss", 6)  # the whole run, redrawn
    assert run.info.status == "FINISHED" and run.data.tags["nemotron.attempts"] == "2"
    assert run.data.tags["resume.param.train.steps"] == "6" and run.data.params["train.steps"] == "4"
    runs = client.search_runs([run.info.experiment_id], filter_string="tags.`nemotron.run_dir` = "
                              f"'{cfg.run_dir}'")
    assert len(runs) == 1


class Outage:
    """Wraps the real tracker: the server is killed after step `down` and restarted after step `up`.

    The uploader is a process of its own: the outage starts once it has created the run (mid-run, not
    before it connected) and lasts at least OUTAGE_S, many of its upload intervals, so it sees it."""

    OUTAGE_S = 1.5

    def __init__(self, inner, server, down, up):
        self.inner, self.server, self.down, self.up = inner, server, down, up
        self.went_down = 0.0

    @property
    def run_id(self):
        return self.inner.run_id

    def log(self, step, metrics):
        self.inner.log(step, metrics)
        if step == self.down and "val_loss" not in metrics:
            deadline = time.monotonic() + 60
            while self.inner.run_id is None and time.monotonic() < deadline:
                time.sleep(0.05)
            self.server.stop()
            self.went_down = time.monotonic()
        if step == self.up and "val_loss" not in metrics:
            time.sleep(max(0.0, self.went_down + self.OUTAGE_S - time.monotonic()))
            self.server.start()

    def close(self, status="FINISHED"):
        self.inner.close(status)


def test_server_lost_and_back_mid_run_loses_nothing(tracked_config, mlflow_server, client, monkeypatch, capfd):
    import nemotron.runtime.stages.pretrain as pretrain
    from nemotron.runtime.train import loop as train_loop
    from nemotron.tracking import open_tracker

    monkeypatch.setattr(train_loop, "open_tracker", lambda cfg, rank: Outage(open_tracker(cfg, rank),
                                                                              mlflow_server, 2, 5))
    cfg = tracked_config(f"tracker.uri={mlflow_server.uri}", "tracker.experiment=tracking-tests",
                         "train.steps=8", "train.log_interval=4")
    result = _train(cfg)
    assert len(result.losses) == 8
    err = capfd.readouterr().err
    assert err.count("is unavailable") == 1 and "training continues" in err
    run_id = RunFiles(cfg.run_dir).run_id
    history = {m.step: m.value for m in client.get_metric_history(run_id, "loss")}
    assert sorted(history) == list(range(1, 9))
    assert history[8] == pytest.approx(result.losses[-1])
    assert client.get_run(run_id).info.status == "FINISHED" and RunFiles(cfg.run_dir).pending() == 0
