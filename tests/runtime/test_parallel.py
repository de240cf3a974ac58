"""Parallel layouts on CPU with two real ranks (gloo), started by the entry point through
PyTorch's elastic launcher: TP=2 reproduces the TP=1 loss curve; DP=2 and EP=2 train.

Each case is one `python -m nemotron.train` subprocess (~10 s, mostly imports): marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nemotron.runtime.stages import pretrain
from runtime_support import run_config, tiny_data_dir  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
COMMON = ["train.steps=8", "train.log_interval=1", "train.num_threads=1", "tracker=jsonl"]


def train_two_ranks(tmp_path: Path, data_dir: Path, recipe: str, *overrides: str) -> list[float]:
    """Per-step losses of a 2-rank local run, read from its metrics.jsonl."""
    argv = [sys.executable, "-m", "nemotron.train", f"+recipe={recipe}", "resources.procs_per_node=2",
            f"paths.output_root={tmp_path}", f"data.cache_dir={data_dir}", *COMMON, *overrides]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (metrics,) = tmp_path.rglob("metrics.jsonl")
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


def test_tensor_parallel_2_reproduces_tensor_parallel_1(run_config, tiny_data_dir, tmp_path):
    reference = pretrain.run(run_config("gpt/pretrain", *COMMON[:3])).losses
    losses = train_two_ranks(tmp_path, tiny_data_dir, "gpt/pretrain", "parallel.tensor_model_parallel_size=2")
    assert losses == pytest.approx(reference, abs=1e-4)


def test_data_parallel_2_trains(tiny_data_dir, tmp_path):
    losses = train_two_ranks(tmp_path, tiny_data_dir, "gpt/pretrain", "parallel.use_distributed_optimizer=true")
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.5


def test_expert_parallel_2_trains(tiny_data_dir, tmp_path):
    losses = train_two_ranks(tmp_path, tiny_data_dir, "nano3/pretrain", "parallel.expert_model_parallel_size=2")
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.5
