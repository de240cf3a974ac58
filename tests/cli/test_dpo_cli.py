"""`python -m nemotron.train +recipe=gpt/dpo` end to end: on a fresh clone one line naming the command
to run first; after a pretraining run, a tracked DPO run on the real MLflow server that records its
reward metrics and its lineage (the preference data and the checkpoint it started from).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nemotron.tracking.buffer import RunFiles
from nemotron.tracking.registry import Registry


def _one_line_error(result, expected: str) -> None:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0], lines[0]


def test_a_fresh_clone_is_told_which_command_to_run_first(cli, tmp_path):
    result = cli("+recipe=gpt/dpo")
    _one_line_error(result, "checkpoint.pretrained=newest:gpt/sft|gpt/pretrain: no complete checkpoint")
    assert "`python -m nemotron.train +recipe=gpt/pretrain`" in result.stderr
    assert not (tmp_path / "outputs" / "gpt" / "dpo").exists() or not any(
        (tmp_path / "outputs" / "gpt" / "dpo").rglob("train.log")
    )  # nothing started


def test_beta_zero_is_one_line_before_anything_starts(cli):
    _one_line_error(
        cli("+recipe=gpt/dpo", "dpo.beta=0", "checkpoint.pretrained=null"), "dpo.beta=0.0: out of range, must be > 0"
    )


def _pretrain(outputs: Path, cache: Path, uri: str) -> None:
    from nemotron.config.compose import compose_run
    from nemotron.runtime.stages import pretrain

    argv = [
        "+recipe=gpt/pretrain",
        "train.num_threads=1",
        "tracker=mlflow",
        f"tracker.uri={uri}",
        "tracker.experiment=dpo-cli",
        "tracker.flush_interval_s=0.2",
        f"paths.cache_dir={cache}",
        f"paths.output_root={outputs}",
        "train.steps=3",
        "train.eval_interval=0",
    ]
    cfg = compose_run(argv, run_dir=outputs / "gpt/pretrain" / "r1")
    pretrain.run(OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)))


@pytest.mark.slow
def test_dpo_run_tracks_rewards_and_lineage_in_mlflow(cli, mlflow_server, tmp_path):
    from mlflow import MlflowClient

    outputs, cache = tmp_path / "outputs", tmp_path / "cache"
    _pretrain(outputs, cache, mlflow_server.uri)
    result = cli(
        "+recipe=gpt/dpo",
        "tracker=mlflow",
        f"tracker.uri={mlflow_server.uri}",
        "tracker.experiment=dpo-cli",
        f"paths.cache_dir={cache}",
        "train.steps=3",
        "train.eval_interval=0",
        "train.log_interval=1",
        "train.num_threads=1",
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "rewards/accuracies" in result.stdout and "reference model: " in result.stdout

    (run_dir,) = [p.parent for p in (outputs / "gpt/dpo").rglob("train.log")]
    client = MlflowClient(tracking_uri=mlflow_server.uri)
    run_id = RunFiles(run_dir).run_id
    history = client.get_metric_history(run_id, "rewards/accuracies")
    assert sorted(m.step for m in history) == [1, 2, 3]
    assert len(client.get_metric_history(run_id, "rewards/margins")) == 3
    tags = client.get_run(run_id).data.tags
    inputs = {i.strip().split("@")[0] for i in tags["nemotron.inputs"].split(",")}
    assert inputs >= {"dpo_data/dpo_tiny", "checkpoint/gpt/pretrain"}
    registry = Registry(outputs / "artifacts.json")
    output = registry.get("checkpoint/gpt/dpo")
    assert tags["nemotron.outputs"].startswith("checkpoint/gpt/dpo@")
    assert {i.split("@")[0] for i in output["inputs"]} == inputs
    assert registry.get("dpo_data/dpo_tiny")["path"].endswith("dpo.json")
