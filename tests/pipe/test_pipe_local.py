"""The nano3 chain end to end on this CPU: generated data -> pretrain -> SFT data -> SFT -> RL, each stage a
real `python -m nemotron.train` run (tiny models, 1-2 steps), tracked in the session's MLflow server.

One chain per module (fixture); the other tests reuse it (a rerun skips every stage) or run a
two-stage chain of their own (a failing stage; Ctrl-C and resume).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from pipe_support import CKPT_OUT, DATA_OUT, PREP, PRETRAIN, REPO, pipe, stage, write_pipeline

pytestmark = pytest.mark.slow

STAGES = ["data", "pretrain", "sft_data", "sft", "rl"]
TINY = (
    "pretrain.train.steps=2",
    "sft.train.steps=2",
    "sft.train.eval_interval=0",
    "rl.train.steps=1",
    "data.data.num_documents=300",
    "sft_data.data.num_documents=200",
)
STARTED = re.compile(r"^pipeline nano3: stage (\w+) \(", re.M)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, mlflow_server):
    root = tmp_path_factory.mktemp("pipe_local") / "outputs"
    args = (
        "pipeline=nano3",
        f"paths.output_root={root}",
        f"paths.cache_dir={root.parent / 'cache'}",
        f"tracker.uri={mlflow_server.uri}",
        "tracker.experiment=pipe-test",
        *TINY,
    )
    first = pipe(*args)
    return {"root": root, "args": args, "first": first, "uri": mlflow_server.uri}


def stage_dirs(root):
    return {
        p.name.rsplit("-", 1)[0]: p
        for p in (root / "pipelines" / "nano3").iterdir()
        if p.is_dir() and ".old-" not in p.name
    }


def test_the_chain_runs_every_stage_in_order_and_registers_lineage(chain):
    first = chain["first"]
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert STARTED.findall(first.stdout) == STAGES
    dirs = stage_dirs(chain["root"])
    assert sorted(dirs) == sorted(STAGES)
    for name in STAGES:
        record = json.loads((dirs[name] / "stage.json").read_text())
        assert record["stage"] == name and record["config_hash"] in dirs[name].name
    sft = (dirs["sft"] / "config.yaml").read_text()
    assert str(dirs["pretrain"] / "checkpoints") in sft and str(dirs["sft_data"] / "data" / "sft.json") in sft
    from nemotron.tracking.registry import Registry, lineage

    lines = "\n".join(lineage(Registry(chain["root"] / "artifacts.json"), "nano3/rl_model"))
    for ref in (
        "nano3/rl_model@1",
        "nano3/sft_model@1",
        "nano3/base_model@1",
        "nano3/sft_data@1",
        "nano3/pretrain_data@1",
    ):
        assert ref in lines, lines


def test_one_parent_run_with_a_nested_run_per_stage_and_the_graph(chain):
    from mlflow import MlflowClient

    client = MlflowClient(chain["uri"])
    exp = client.get_experiment_by_name("pipe-test")
    runs = client.search_runs([exp.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("nemotron.pipeline.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    by_stage = {r.data.tags.get("nemotron.pipeline.stage"): r for r in children}
    assert sorted(by_stage) == sorted(STAGES) and parent.info.status == "FINISHED"
    sft_inputs = {d.dataset.name for d in by_stage["sft"].inputs.dataset_inputs}
    assert {"nano3/base_model@1", "nano3/sft_data@1"} <= sft_inputs  # beside what the trainer itself logs
    assert by_stage["rl"].data.tags["nemotron.output.rl_model"].startswith("nano3/rl_model@1 ")
    assert "loss" in by_stage["pretrain"].data.metrics
    files = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"pipeline_graph.png", "pipeline.json"} <= files
    summary = json.loads(open(client.download_artifacts(parent.info.run_id, "pipeline.json")).read())
    metrics = {s["stage"]: s.get("metric") for s in summary["stages"]}
    assert metrics["pretrain"].startswith("loss ") and metrics["rl"].startswith(("reward ", "loss "))


def test_a_rerun_skips_every_finished_stage(chain):
    again = pipe(*chain["args"], "tracker=none")  # tracking changes nothing a stage produces: same hashes
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert STARTED.findall(again.stdout) == []
    assert again.stdout.count("skipped, finished for the same config") == len(STAGES)


def test_only_reruns_one_stage_and_keeps_its_earlier_run(chain):
    again = pipe(*chain["args"], "tracker=none", "--only", "data")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert STARTED.findall(again.stdout) == ["data"]
    assert list((chain["root"] / "pipelines" / "nano3").glob("data-*.old-*"))  # moved aside, not deleted


def test_a_failing_stage_stops_the_chain_and_names_its_log(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json\n')
    path = write_pipeline(
        tmp_path / "p.yaml",
        [
            stage("data", "data/prep", [f"data.sources=[{bad}]", "data.cache_dir={stage_dir}/data"], produces=DATA_OUT),
            stage("pretrain", "gpt/pretrain", PRETRAIN, ["pretrain_data"], CKPT_OUT),
        ],
    )
    root = tmp_path / "outputs"
    result = pipe(f"pipeline={path}", f"paths.output_root={root}", "tracker=none")
    assert result.returncode not in (0, 2), result.stdout + result.stderr
    line = result.stderr.strip().splitlines()[-1]
    log = re.search(r"log: (\S+train\.log)", line).group(1)
    assert "stage data failed" in line and "not run: pretrain" in line
    assert f"{bad}:2: not a JSON object" in open(log).read()
    assert not list((root / "pipelines" / "custom").glob("pretrain-*"))


def test_ctrl_c_keeps_finished_stages_and_the_same_command_resumes(tmp_path):
    path = write_pipeline(
        tmp_path / "p.yaml",
        [
            stage("data", "data/prep", PREP, produces=DATA_OUT),
            stage(
                "pretrain",
                "gpt/pretrain",
                [*PRETRAIN, "train.steps=40", "train.log_interval=1", "checkpoint.save_interval=2"],
                ["pretrain_data"],
                CKPT_OUT,
            ),
        ],
    )
    secret = "s3cr3t-pipe-value-42"  # a secret on the command line reaches no file of the pipeline
    args = [
        f"pipeline={path}",
        f"paths.output_root={tmp_path / 'outputs'}",
        "tracker=none",
        f"cluster.env.PIPE_TEST_TOKEN={secret}",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nemotron.pipe", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    root = tmp_path / "outputs" / "pipelines" / "custom"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(root.glob("pretrain-*/checkpoints/iter_*/nemotron_checkpoint.json")):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole foreground group
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert "interrupted in stage pretrain" in err
    assert list(root.glob("data-*/stage.json")) and not list(root.glob("pretrain-*/stage.json"))
    again = pipe(*args)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "stage data: skipped" in again.stdout and "resum" in again.stdout.lower()
    assert list(root.glob("pretrain-*/stage.json"))
    leaked = [
        p
        for p in (tmp_path / "outputs").rglob("*")
        if p.is_file() and p.name != "secrets.env" and secret.encode() in p.read_bytes()
    ]
    assert not leaked, leaked
