"""`python -m nemotron.pipe ... cluster=slurm_test` on the real test cluster: every stage is submitted at
once, each depending on its producers; the chain completes in order; its finishing job writes the
stage records and closes the MLflow parent run every stage's run nests under; a failing stage leaves
its dependents never run (sacct says why); `nemotron.jobs list` shows the pipeline as one unit and
`nemotron.jobs resubmit` continues from the first unfinished stage.

The chain here is nano3's first three stages, copied from conf/pipeline/nano3.yaml into a pipeline file:
data -> pretrain -> eval_pretrain (a stage with two producers that consumes a checkpoint; its lineage
is checked). Dependencies, ordering, the finishing job and the parent run work the same for 3 stages
as for 8, and the whole 8-stage nano3 chain already runs end to end in tests/pipe/test_pipe_local.py
(SFT and GRPO on Slurm: test_post_training_slurm.py).

Both chains are submitted together (module fixture) so that they run side by side.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from slurm_support import REPO

pytestmark = pytest.mark.slow

TINY = (
    "pretrain.train.steps=2",
    "data.data.num_documents=300",
    "eval.limit=2",  # every eval stage (no stage is named eval): 2 documents of each local task
    "eval.bootstrap_iters=0",
)
NAME = "nano3_short"
STAGES = ["data", "pretrain", "eval_pretrain"]
LAST = STAGES[-1]


def run(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
        cwd=REPO,
        timeout=timeout,
    )


def sacct(job_ids, fields="JobID,State,Start,End,Reason"):
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-j", ",".join(job_ids), "-o", fields], capture_output=True, text=True
    ).stdout
    return {line.split("|")[0]: line.split("|")[1:] for line in out.strip().splitlines()}


def stage_jobs(pipeline_dir):
    rec = json.loads((pipeline_dir / "pipeline.json").read_text())
    return {s["stage"]: str(s["job_id"]) for s in rec["stages"] if s.get("job_id")}, rec


@pytest.fixture(scope="module")
def short_pipeline(tmp_path_factory):
    """pipeline=<this file>: nano3's stages named in STAGES, as conf/pipeline/nano3.yaml defines them."""
    nano3 = yaml.safe_load((REPO / "conf" / "pipeline" / "nano3.yaml").read_text())
    stages = [s for s in nano3["stages"] if s["name"] in STAGES]
    assert [s["name"] for s in stages] == STAGES
    path = tmp_path_factory.mktemp("pipe_file") / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump({"name": NAME, "stages": stages}, sort_keys=False))
    return f"pipeline={path}"


@pytest.fixture(scope="module")
def chains(slurm_cluster, mlflow_server, short_pipeline, tmp_path_factory):
    base = tmp_path_factory.mktemp("pipe_slurm")
    bad_source = base / "bad.jsonl"
    bad_source.write_text('{"text": "one"}\nnot json\n')
    bad_file = base / "broken.yaml"
    bad_file.write_text(
        yaml.safe_dump(
            {
                "name": "broken",
                "stages": [
                    {
                        "name": "data",
                        "recipe": "data/prep",
                        "overrides": [f"data.sources=[{bad_source}]", "data.cache_dir={stage_dir}/data"],
                        "produces": {"corpus": {"kind": "data", "path": "{stage_dir}/data"}},
                    },
                    {
                        "name": "pretrain",
                        "recipe": "gpt/pretrain",
                        "consumes": ["corpus"],
                        "overrides": ["data=prepared", "data.blend_file={corpus}/blend.json", "train.steps=2"],
                    },
                ],
            }
        )
    )
    common = ("cluster=slurm_test", "cluster.snapshot=false")
    good_args = (
        short_pipeline, *common, f"tracker.uri={mlflow_server.uri}", f"paths.output_root={base / 'good'}", *TINY,
    )  # fmt: skip
    started = time.monotonic()
    good = run("nemotron.pipe", *good_args)
    submit_s = time.monotonic() - started
    twice = run("nemotron.pipe", *good_args)
    bad = run("nemotron.pipe", f"pipeline={bad_file}", *common, "tracker=none", f"paths.output_root={base / 'bad'}")
    return {
        "good": good,
        "bad": bad,
        "submit_s": submit_s,
        "twice": twice,
        "base": base,
        "bad_source": bad_source,
        "good_args": good_args,
        "good_dir": base / "good" / "pipelines" / NAME,
        "bad_dir": base / "bad" / "pipelines" / "broken",
    }


def test_every_stage_is_submitted_at_once_and_the_chain_completes_in_order(chains, wait_for_job):
    good = chains["good"]
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"submitted {len(STAGES)} stage(s) to Slurm" in good.stdout and "python -m nemotron.jobs list" in good.stdout
    ids, rec = stage_jobs(chains["good_dir"])
    assert sorted(ids) == sorted(STAGES)
    twice = chains["twice"]  # the same command while the chain is queued submits nothing twice
    assert twice.returncode == 2 and "is still" in twice.stderr and "scancel" in twice.stderr, twice.stderr
    upstream = {s["stage"]: s["upstream"] for s in rec["stages"]}
    assert wait_for_job(ids[LAST], timeout_s=420) == ("COMPLETED", "0:0")
    rows = sacct(list(ids.values()))
    for stage, job in ids.items():
        state, start, _, _ = rows[job]
        assert state == "COMPLETED", (stage, rows[job])
        for producer in upstream[stage]:
            assert start >= rows[ids[producer]][2], (stage, producer, rows)  # started after its producer ended


def test_jobs_lists_the_pipeline_as_one_unit_with_each_stage(chains, wait_for_job):
    ids, _ = stage_jobs(chains["good_dir"])
    wait_for_job(ids[LAST], timeout_s=420)
    listed = run("nemotron.jobs", "list", "--root", str(chains["base"] / "good"))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith(f"pipeline {NAME} ({chains['good_dir']}")
    listed_stages = lines[1 : 1 + len(STAGES)]
    for stage in STAGES:
        assert any(ln.split()[:3] == [stage, ids[stage], "COMPLETED"] for ln in listed_stages), listed.stdout
    assert len([ln for ln in lines if ln and not ln.startswith(" ")]) == 1  # the stages are not listed again
    assert any(ln.split()[:2] == ["(finish)", stage_jobs(chains["good_dir"])[1]["finish_job_id"]] for ln in lines)


def test_the_finishing_job_records_every_stage_and_closes_the_mlflow_parent_run(chains, wait_for_job, mlflow_server):
    from mlflow import MlflowClient

    good = chains["good"]
    assert "finish: job" in good.stdout and "MLflow:  parent run" in good.stdout, good.stdout
    _, rec = stage_jobs(chains["good_dir"])
    assert wait_for_job(rec["finish_job_id"], timeout_s=480) == ("COMPLETED", "0:0")
    _, rec = stage_jobs(chains["good_dir"])  # written by the finishing job, no nemotron.pipe command since
    assert rec["finished"] and [s["state"] for s in rec["stages"]] == ["done"] * len(STAGES), rec
    stage_records = {s["stage"]: json.loads((Path(s["stage_dir"]) / "stage.json").read_text()) for s in rec["stages"]}
    base_ref = stage_records["pretrain"]["outputs"]["base_model"]["ref"]
    assert base_ref.startswith(f"{NAME}/base_model") and base_ref in stage_records[LAST]["input_refs"]

    client = MlflowClient(tracking_uri=mlflow_server.uri)
    parent = client.get_run(rec["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["nemotron.pipeline"] == NAME
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(r.data.tags.get("nemotron.pipeline.stage") for r in children) == sorted(STAGES)
    own = {r.data.tags["nemotron.pipeline.stage"]: r for r in children}
    assert "loss" in own["pretrain"].data.metrics and own[LAST].info.status == "FINISHED"
    assert {d.dataset.name.split("@")[0] for d in own[LAST].inputs.dataset_inputs} >= {f"{NAME}/base_model"}
    assert "pipeline_graph.png" in [a.path for a in client.list_artifacts(parent.info.run_id)]


def test_a_failing_stage_leaves_its_dependents_never_run_and_sacct_says_why(chains, wait_for_job):
    assert chains["bad"].returncode == 0, chains["bad"].stdout + chains["bad"].stderr
    ids, _ = stage_jobs(chains["bad_dir"])
    assert wait_for_job(ids["data"], timeout_s=180)[0] == "FAILED"
    state, _ = wait_for_job(ids["pretrain"], timeout_s=120)
    assert state == "CANCELLED"
    _, elapsed = sacct([ids["pretrain"]], "JobID,State,Elapsed")[ids["pretrain"]]
    assert elapsed == "00:00:00"  # sacct's Reason (DependencyNeverSatisfied) was once None under load: ours says why
    pretrain_dir = next(chains["bad_dir"].glob("pretrain-*"))
    assert not (pretrain_dir / "train.log").exists() and not (pretrain_dir / "checkpoints").exists()  # never ran
    _, rec = stage_jobs(chains["bad_dir"])
    wait_for_job(rec["finish_job_id"], timeout_s=120)
    _, rec = stage_jobs(chains["bad_dir"])
    assert [s["state"] for s in rec["stages"]] == ["failed", "not run"], rec
    assert rec["stages"][1]["why"] == "never ran: data did not finish"
    assert not list(chains["bad_dir"].glob("*/stage.json"))
    listed = run("nemotron.jobs", "list", "--root", str(chains["base"] / "bad")).stdout
    assert re.search(r"^  pretrain +\d+ +CANCELLED .*\(never ran: data did not finish\)", listed, re.M), listed


def test_resubmit_continues_from_the_first_unfinished_stage(chains, wait_for_job):
    ids, _ = stage_jobs(chains["bad_dir"])
    wait_for_job(ids["pretrain"], timeout_s=180)
    chains["bad_source"].write_text('{"text": "one two three"}\n' * 200)  # fixed; the config is the same
    again = run("nemotron.jobs", "resubmit", str(chains["bad_dir"]))
    assert again.returncode == 0, again.stdout + again.stderr
    new, _ = stage_jobs(chains["bad_dir"])
    assert set(new) == {"data", "pretrain"} and not set(new.values()) & set(ids.values())
    assert wait_for_job(new["pretrain"], timeout_s=300) == ("COMPLETED", "0:0")
    good_again = run("nemotron.pipe", *chains["good_args"])
    assert good_again.returncode == 0 and "submitted 0 stage(s)" in good_again.stdout, good_again.stdout
    assert good_again.stdout.count("finished for the same config, not submitted") == len(STAGES)


def test_a_stage_slurm_refuses_submits_nothing_and_ends_the_parent_run_failed(
    slurm_cluster, mlflow_server, short_pipeline, tmp_path
):
    from mlflow import MlflowClient

    refused = run(  # 100 GB per node: more than the test nodes have, which only sbatch knows
        "nemotron.pipe", short_pipeline, "cluster=slurm_test", "cluster.snapshot=false", "cluster.mem_gb=100",
        f"tracker.uri={mlflow_server.uri}", f"paths.output_root={tmp_path}", *TINY,
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.startswith("error: sbatch refused"), refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    _, rec = stage_jobs(tmp_path / "pipelines" / NAME)
    assert not any(s.get("job_id") for s in rec["stages"]) and rec["finish_job_id"] is None
    parent = MlflowClient(tracking_uri=mlflow_server.uri).get_run(rec["parent_run_id"])
    assert parent.info.status == "FAILED"
