"""TP=2 GRPO log-probs equal TP=1: two real gloo ranks under PyTorch's elastic launcher run one fixed
GRPO micro batch through rl_step on the tiny GPT and a tiny hybrid (Mamba-2 + attention) at TP=1 and
at TP=2 (same weights through a checkpoint). The vocabulary-parallel token log-probs, entropy, frozen
(reference) log-probs, loss and gradient norm match TP=1 and the old implementation that gathered the
logits over the full vocabulary (kept in tests/runtime/tp_grpo_worker.py); the padded vocabulary rows
(300 tokens padded to 512) are masked. One subprocess (~30 s, mostly imports): marked slow.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from dist_support import torchrun

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
MODELS = ["gpt_tiny", "hybrid_tiny"]


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> list[dict]:
    """What each of the two ranks measured: {model: {tp1|tp2: {quantity: values}}}."""
    out = tmp_path_factory.mktemp("tp_grpo")
    done = torchrun([HERE / "tp_grpo_worker.py", out])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def close(actual, expected) -> None:
    torch.testing.assert_close(torch.tensor(actual), torch.tensor(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model", MODELS)
def test_each_rank_holds_only_its_vocabulary_shard(measured, model):
    assert [measured[r][model]["tp2"]["width"] for r in (0, 1)] == [256, 256]  # of the padded 512
    assert measured[0][model]["tp1"]["width"] == 512


@pytest.mark.parametrize("model", MODELS)
def test_vocab_parallel_logp_and_entropy_match_the_gathered_full_vocabulary(measured, model):
    for tp in ("tp1", "tp2"):
        got = measured[0][model][tp]
        close(got["logp"], got["gathered_logp"])
        close(got["entropy"], got["gathered_entropy"])
        close(got["frozen"], got["gathered_logp"])
        close(got["loss_grad"], got["gathered_loss_grad"])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("quantity", ["logp", "entropy", "frozen", "loss_grad"])
def test_tensor_parallel_2_gives_the_tensor_parallel_1_values(measured, model, quantity):
    close(measured[0][model]["tp2"][quantity], measured[0][model]["tp1"][quantity])


def test_the_two_tensor_parallel_ranks_agree(measured):
    for model in MODELS:
        for quantity in ("logp", "entropy", "loss_grad"):
            close(measured[1][model]["tp2"][quantity], measured[0][model]["tp2"][quantity])


@pytest.mark.parametrize("model", MODELS)
def test_the_batch_is_not_degenerate(measured, model):
    got = measured[0][model]["tp1"]
    entropy = torch.tensor(got["entropy"])
    assert (entropy < math.log(300)).all() and (entropy > 1.0).all()  # a distribution over the 300 tokens
    loss, norm = got["loss_grad"]
    assert loss != 0.0 and norm > 0.0
