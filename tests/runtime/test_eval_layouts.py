"""The eval stage on parallel layouts, through the real entry point (torchrun, gloo, CPU): tensor
parallelism 2 and data parallelism 2 give the scores of one rank, and data parallelism splits the
documents (lm-eval's per-rank split over our data-parallel group: each replica scores its own share)."""

from __future__ import annotations

import json
import re

import pytest
from cli_support import run_cli
from omegaconf import OmegaConf
from runtime_support import run_config, tiny_data_dir  # noqa: F401

TASKS = "[nemotron_arithmetic,nemotron_topic_choice]"
LIMIT = 5  # odd: the two replicas get 3 and 2 documents of each task


@pytest.fixture
def checkpoint(run_config):  # noqa: F811
    """A 2-step gpt_tiny pretraining run with one checkpoint and its config.yaml (as the launcher writes)."""
    from nemotron.runtime.stages.registry import stage_runner

    cfg = run_config("gpt/pretrain", "train.steps=2", "train.eval_interval=0", "checkpoint.save_interval=2")
    stage_runner("pretrain")(cfg)
    OmegaConf.save(cfg, f"{cfg.run_dir}/config.yaml")
    return f"{cfg.run_dir}/checkpoints"


def _scores(tmp_path, tiny_data_dir, checkpoint, name, *layout):  # noqa: F811
    out = tmp_path / name
    result = run_cli(
        "+recipe=gpt/eval", f"checkpoint.pretrained={checkpoint}", f"eval.tasks={TASKS}", f"eval.limit={LIMIT}",
        "eval.bootstrap_iters=0", "tracker=none", "train.num_threads=1", f"data.cache_dir={tiny_data_dir}",
        f"paths.output_root={out}", *layout, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = out.rglob("eval_results.json")
    results = json.loads(path.read_text())
    return {
        task: {k: v for k, v in values.items() if k != "alias"} for task, values in results["results"].items()
    }, result


def test_tensor_and_data_parallel_evaluations_score_as_one_rank(tmp_path, tiny_data_dir, checkpoint):  # noqa: F811
    one, one_log = _scores(tmp_path, tiny_data_dir, checkpoint, "one")
    tp2, _ = _scores(tmp_path, tiny_data_dir, checkpoint, "tp2", "resources.procs_per_node=2",
                     "parallel.tensor_model_parallel_size=2")  # fmt: skip
    dp2, log = _scores(tmp_path, tiny_data_dir, checkpoint, "dp2", "resources.procs_per_node=2")
    assert set(one) == {"nemotron_arithmetic", "nemotron_topic_choice"}
    assert one["nemotron_topic_choice"]["acc,none"] == pytest.approx(tp2["nemotron_topic_choice"]["acc,none"])
    assert one == dp2  # every document scored once, by one replica, gathered to rank 0
    for task in one:
        for key, value in one[task].items():
            assert tp2[task][key] == pytest.approx(value, abs=1e-6), (task, key)
    scored = re.findall(r"eval: data-parallel replica (\d)/2 scored (\d+) requests", log.stdout + log.stderr)
    assert sorted(r for r, _ in scored) == ["0", "1"], log.stdout[-2000:]
    # each replica scored its share (lm-eval pads the shorter one with copies of its last request)
    assert all(0 < int(n) < requests_of(one_log) for _, n in scored)


def requests_of(log) -> int:
    """Requests one rank scored alone: every request of the tasks (from the one-rank run's own count)."""
    return int(re.search(r"eval: scored (\d+) requests", log.stdout + log.stderr).group(1))
