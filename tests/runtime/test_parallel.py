"""Parallel layouts on CPU with two real ranks (gloo), started by the entry point through
PyTorch's elastic launcher: TP=2 reproduces the TP=1 loss curve; DP=2 and EP=2 train.

Each case is one `python -m nemotron.train` subprocess (~10 s, mostly imports): marked slow.
"""

from __future__ import annotations

import pytest

from nemotron.runtime.stages import pretrain
from runtime_support import TWO_RANK_COMMON, run_config, tiny_data_dir, train_two_ranks  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow
COMMON = TWO_RANK_COMMON


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
