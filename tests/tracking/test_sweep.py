"""A `-m` sweep through the real entry point: one parent run, one nested child per member.

One CLI subprocess (two 3-step members, ~15-30 s here), read back from the session's MLflow server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from picture_support import shown

from nemotron.tracking.cli import main as tracking_cli

pytestmark = pytest.mark.slow


def _runs(client, experiment, filter_string):
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], filter_string=filter_string)


def test_sweep_is_a_parent_run_with_one_child_per_member(cli, mlflow_server, data_dir, client, tmp_path, capsys):
    result = cli("+recipe=gpt/pretrain", f"tracker.uri={mlflow_server.uri}", "tracker.experiment=sweep-tests",
                 f"data.cache_dir={data_dir}", "train.steps=3", "train.num_threads=1", "-m", "optim.lr=1e-3,3e-3",
                 env={"MLFLOW_DISABLE_TELEMETRY": "true"}, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    parents = _runs(client, "sweep-tests", "tags.`nemotron.sweep` = 'parent'")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.params["sweep.optim.lr"] == "1e-3,3e-3"
    definition = json.loads(Path(client.download_artifacts(parent.info.run_id, "sweep.json", str(tmp_path))).read_text())
    assert definition["sweep"] == ["optim.lr=1e-3,3e-3"] and "train.steps=3" in definition["fixed"]
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"compare.txt", "compare_loss.png"}

    children = _runs(client, "sweep-tests", f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_name = {c.info.run_name: c for c in children}
    assert sorted(by_name) == ["0: optim.lr=0.001", "1: optim.lr=0.003"]
    assert [by_name[n].data.params["optim.lr"] for n in sorted(by_name)] == ["0.001", "0.003"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert "logs/train.log" in {a.path for a in client.list_artifacts(child.info.run_id, "logs")}

    multirun = next((tmp_path / "outputs").rglob("multirun_*"))
    plot = tmp_path / "compare.png"
    assert tracking_cli(["compare", str(multirun), "--out", str(plot)]) == 0
    table = capsys.readouterr().out
    assert "0: optim.lr=0.001" in table and "1: optim.lr=0.003" in table
    panels = shown(plot)  # one figure across the members: a line each, in every panel
    assert panels["loss"] == [("0: optim.lr=0.001", 3), ("1: optim.lr=0.003", 3)]
    assert [label for label, _ in panels["learning rate"]] == ["0: optim.lr=0.001", "1: optim.lr=0.003"]
    for member in children:
        assert shown(Path(member.data.tags["nemotron.run_dir"]) / "loss.png")["loss"] == [("loss", 3)]
