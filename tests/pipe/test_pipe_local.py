"""The nano3 chain end to end on this CPU: generated data -> pretrain -> SFT data -> SFT -> RL, with an eval
stage after each model, each stage a real `python -m nemotron.train` run (tiny models, 1-2 steps, 2
documents per eval task), tracked in the session's MLflow server; the eval scores side by side.

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
from pipe_support import CKPT_OUT, DATA_OUT, PRETRAIN, REPO, pipe, stage, write_pipeline

pytestmark = pytest.mark.slow

STAGES = ["data", "pretrain", "eval_pretrain", "sft_data", "sft", "eval_sft", "rl", "eval_rl"]
TINY = (
    "sft.train.steps=2",
    "sft.train.eval_interval=0",
    "rl.train.steps=1",
    "data.data.num_documents=300",
    "sft_data.data.num_documents=200",
    "eval.limit=2",  # every eval stage: 2 documents of each local task
    "eval.bootstrap_iters=0",
    "pretrain.train.steps=3",
    "pretrain.checkpoint.save_interval=1",
)
STARTED = re.compile(r"^pipeline nano3: stage (\w+) \(", re.M)


SECRET = "s3cr3t-pipe-value-42"
"""Given on the command line (cluster.env); no file of the pipeline may hold it."""


@pytest.fixture(scope="module")
def chain(tmp_path_factory, mlflow_server):
    """The chain, first stopped by Ctrl-C once pretraining saved a checkpoint (tracker=none: the same
    stage hashes), then run again to the end with MLflow."""
    root = tmp_path_factory.mktemp("pipe_local") / "outputs"
    args = (
        "pipeline=nano3",
        f"paths.output_root={root}",
        f"paths.cache_dir={root.parent / 'cache'}",
        f"+cluster.env.PIPE_TEST_TOKEN={SECRET}",
        *TINY,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "nemotron.pipe", *args, "tracker=none"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal, even when this
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # pytest was started as a background job (SIGINT ignored)
    )
    marker = "pipelines/nano3/pretrain-*/checkpoints/iter_*/nemotron_checkpoint.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(root.glob(marker)) and proc.poll() is None:
        time.sleep(0.1)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole foreground group
    out, err = proc.communicate(timeout=180)
    done_before = [n for n in STAGES if list(root.glob(f"pipelines/nano3/{n}-*/stage.json"))]
    first = pipe(*args, f"tracker.uri={mlflow_server.uri}", "tracker.experiment=pipe-test")
    return {
        "root": root,
        "args": args,
        "first": first,
        "uri": mlflow_server.uri,
        "stopped": (proc.returncode, out, err, done_before),
    }


def stage_dirs(root):
    return {
        p.name.rsplit("-", 1)[0]: p
        for p in (root / "pipelines" / "nano3").iterdir()
        if p.is_dir() and ".old-" not in p.name
    }


def test_the_chain_runs_every_stage_in_order_and_registers_lineage(chain):
    first = chain["first"]
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert chain["stopped"][3] + STARTED.findall(first.stdout) == STAGES  # the stopped run's, then the rest
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
    scores = first.stdout.split("pipeline nano3: eval scores (")[1]
    head = scores.splitlines()[1]
    assert [c.strip() for c in head.split("|")[1:-1]] == ["task / metric", "eval_pretrain", "eval_sft", "eval_rl"]
    assert "nemotron_arithmetic exact_match_strip" in scores and "nemotron_topic_choice acc" in scores
    assert (chain["root"] / "pipelines" / "nano3" / "scores.md").is_file()


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
    assert "loss" in by_stage["sft"].data.metrics  # sft and rl always run here (the stop came before them)
    files = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"pipeline_graph.png", "pipeline.json"} <= files
    summary = json.loads(open(client.download_artifacts(parent.info.run_id, "pipeline.json")).read())
    metrics = {s["stage"]: s.get("metric") for s in summary["stages"]}
    assert metrics["sft"].startswith("loss ") and metrics["rl"].startswith(("reward ", "loss "))


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


def test_ctrl_c_keeps_finished_stages_and_the_same_command_resumes(chain):
    code, out, err, done_before = chain["stopped"]
    assert code == 130, out[-2000:] + err[-2000:]
    stopped = re.search(r"interrupted in stage (\w+); finished stages are kept", err).group(1)
    assert done_before == STAGES[: STAGES.index(stopped)]  # every stage before it finished, it did not
    again = chain["first"].stdout
    assert [f"stage {n}: skipped" in again for n in done_before] == [True] * len(done_before)
    assert STARTED.findall(again) == STAGES[STAGES.index(stopped) :]
    if stopped == "pretrain":  # stopped after its first checkpoint: the rerun continues from it
        assert "resumed from" in again


def test_no_file_of_the_pipeline_holds_the_secret(chain):
    leaked = [
        p
        for p in chain["root"].rglob("*")
        if p.is_file() and p.name != "secrets.env" and SECRET.encode() in p.read_bytes()
    ]
    assert not leaked, leaked
