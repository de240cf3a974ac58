"""The main job end to end: the README's command trains a real Megatron-Core model on this CPU.

Each test starts real training processes (~10 s of imports each), so they are few and marked slow.
"""

from __future__ import annotations

from pathlib import Path

import json
import re

import pytest

pytestmark = pytest.mark.slow

PROGRESS = re.compile(r"step +(\d+)/(\d+) \| loss ([\d.]+) .*\| ([\d,]+) tokens/s")
WHAT_A_PERSON_NEEDS = re.compile(r"^(step \d+/\d+ \| loss |checkpoint saved: |done \| |outputs: |MLflow: mlflow ui )")
"""The only lines the main job prints: progress, the checkpoint, the summary, where the outputs are."""


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory):
    """One generated tiny dataset for every run in this module."""
    return tmp_path_factory.mktemp("cache")


def metrics(run_root):
    """Logged step records of the single run under run_root."""
    files = list(run_root.rglob("metrics.jsonl"))
    assert len(files) == 1, files
    return [r for r in map(json.loads, files[0].read_text().splitlines()) if "step" in r]


def test_main_command_trains_and_loss_goes_down(cli, data_cache, tmp_path):
    result = cli("+recipe=nano3/pretrain", f"paths.cache_dir={data_cache}", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    progress = PROGRESS.findall(result.stdout)
    assert progress, result.stdout[-2000:]
    assert int(progress[-1][0]) == int(progress[-1][1]) == 30
    records = metrics(tmp_path / "outputs")
    assert records[-1]["loss"] < records[0]["loss"] - 0.5
    run_dir = next((tmp_path / "outputs").rglob("config.yaml")).parent
    assert (run_dir / "train.log").read_text().count("tokens/s") >= len(progress)
    printed = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert [line for line in printed if not WHAT_A_PERSON_NEEDS.match(line)] == []  # no warnings, no noise
    assert f"outputs: {run_dir} (config.yaml, train.log, checkpoints/, tracking/)\n" in result.stdout
    store = tmp_path / "outputs" / "mlflow.db"
    assert f"MLflow: mlflow ui --backend-store-uri sqlite:///{store}" in result.stdout and store.is_file()


def test_failed_training_is_one_line_with_its_reason_and_the_log_keeps_the_traceback(cli, data_cache, tmp_path,
                                                                                      word_tokenizer):
    # Shards that exist (so the compose-time check passes) but that only the training process reads.
    missing = tmp_path / "not_megatron_data"
    for ext in (".bin", ".idx"):
        missing.with_suffix(ext).write_text("not an indexed dataset\n")
    result = cli("+recipe=gpt/pretrain", f"paths.cache_dir={data_cache}", "data.generate_tiny=false",
                 f"data.prefixes=[{missing}]", f"data.tokenizer_path={word_tokenizer}", timeout=300)
    assert result.returncode not in (0, 2)
    assert "Traceback" not in result.stdout + result.stderr and "Error executing job" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    log = line.rsplit("full log: ", 1)[-1]
    assert line.startswith("error: recipe gpt/pretrain failed with exit code ") and log.endswith("train.log")
    reason = line.split(" (", 1)[1].rsplit("); full log", 1)[0]  # the exception line the log's traceback ends with
    assert reason and "Traceback (most recent call last)" in Path(log).read_text() and reason in Path(log).read_text()


def test_two_local_ranks_train_data_parallel(cli, data_cache, tmp_path):
    result = cli("+recipe=gpt/pretrain", f"paths.cache_dir={data_cache}", "resources.procs_per_node=2",
                 "train.steps=6", "train.log_interval=3", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "world 2 (TP1 PP1 CP1 EP1 DP2)" in result.stdout
    assert len(metrics(tmp_path / "outputs")) >= 2  # rank 0 alone writes the tracker
