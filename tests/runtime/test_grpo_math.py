"""GRPO's math against hand computations, the shipped rewards, and the prompt pipeline (no training)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from nemotron.runtime import rewards
from nemotron.runtime.data import rl as rl_data
from nemotron.runtime.stages.rl import grpo


def test_group_advantages_match_a_hand_computation():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    adv = grpo.group_advantages(r, 4)
    std = math.sqrt(((0.5**2) * 4) / 3)  # group 1: mean 0.5, unbiased std
    expected = [0.5 / (std + grpo.STD_EPS), -0.5 / (std + grpo.STD_EPS)] * 1
    assert adv[:2].tolist() == pytest.approx(expected)
    assert adv[2:4].tolist() == pytest.approx(expected[::-1])
    assert adv[4:].tolist() == [0.0] * 4  # all equal: no signal, no nan
    assert grpo.group_advantages(r, 4, scale=False)[:4].tolist() == [0.5, -0.5, -0.5, 0.5]


def test_clipped_loss_and_kl_match_a_hand_computation():
    logp = torch.log(torch.tensor([[0.5, 0.2, 0.9]]))
    old = torch.log(torch.tensor([[0.4, 0.4, 0.9]]))  # ratios 1.25, 0.5, 1.0
    ref = torch.log(torch.tensor([[0.5, 0.1, 0.3]]))
    mask = torch.tensor([[1.0, 1.0, 0.0]])  # the last token is not a response token
    for adv, pg in (
        (2.0, [-(1.2 * 2.0), -(0.5 * 2.0)]),  # A > 0: 1.25 clipped to 1.2; 0.5 kept
        (-1.0, [1.25, 0.8]),
    ):  # A < 0: 1.25 kept; 0.5 clipped to 0.8
        terms = grpo.token_terms(logp, old, ref, torch.tensor([adv]), clip_eps=0.2, beta=0.1)
        kl = [0.0, 0.5 - math.log(0.5) - 1]  # exp(ref - logp) - (ref - logp) - 1
        expected = [pg[0] + 0.1 * kl[0], pg[1] + 0.1 * kl[1]]
        assert terms["loss"][0, :2].tolist() == pytest.approx(expected, rel=1e-5)
        assert terms["ratio"][0].tolist() == pytest.approx([1.25, 0.5, 1.0], rel=1e-5)
        sums = grpo.masked_sums(terms, mask)
        assert float(sums["loss"]) == pytest.approx(sum(expected), rel=1e-5)
        assert float(sums["clipped"]) == 1.0  # exactly one token had its objective clipped


def test_on_policy_ratio_is_one_and_kl_to_itself_is_zero():
    logp = torch.randn(2, 5, requires_grad=True)
    terms = grpo.token_terms(logp, logp.detach(), logp.detach(), torch.tensor([1.0, -1.0]), 0.2, 0.1)
    assert torch.equal(terms["ratio"], torch.ones(2, 5)) and torch.equal(terms["kl"], torch.zeros(2, 5))
    terms["loss"].sum().backward()  # on-policy: the gradient is -A * grad(logp)
    assert torch.allclose(logp.grad, torch.tensor([[-1.0], [1.0]]).expand(2, 5))


def test_shipped_rewards():
    assert rewards.exact_match("q", " 12\n", "12") == 1.0 and rewards.exact_match("q", "12.", "12") == 0.0
    assert rewards.numeric_answer("q", "it is 12 apples", "12") == 1.0
    assert rewards.numeric_answer("q", "13 or 12", "12") == 0.0  # the first number counts
    assert rewards.numeric_answer("q", "none", "12") == 0.0
    assert rewards.regex_match("q", "the answer: 7", "7", pattern=r"answer: {answer}$") == 1.0
    assert rewards.regex_match("q", "the answer: 17", "7", pattern=r"answer: {answer}$") == 0.0


def test_bad_rewards_are_refused_in_one_line():
    cases = [
        ([{"_target_": "no_such_module.fn"}], r"rl\.rewards\[0\]\._target_=no_such_module\.fn: does not import"),
        ([{"_target_": "math.pi"}], r"is a float, not a callable"),
        ([{"_target_": "math.sqrt"}], r"wrong signature"),
        ([{"_target_": "nemotron.runtime.rewards.regex_match", "patern": "x"}], r"unexpected keyword.*'patern'"),
        ([], r"rl\.rewards is empty"),
    ]
    for specs, match in cases:
        with pytest.raises(rewards.RewardError, match=match) as err:
            rewards.load_rewards(specs)
        assert "\n" not in str(err.value)
    loaded = rewards.load_rewards([{"_target_": "posixpath.join"}])  # returns a string
    with pytest.raises(rewards.RewardError, match=r"reward posixpath\.join returned 'q/r/a' for prompt 17"):
        rewards.score(loaded, "q", "r", "a", 17)
    weighted = rewards.load_rewards([{"_target_": "nemotron.runtime.rewards.exact_match", "weight": 2}])
    assert rewards.score(weighted, "q", "a", "a", 0)["total"] == 2.0


def test_prompts_use_the_chat_template_and_overlong_ones_are_counted_and_skipped(tiny_tokenizer):
    cfg = SimpleNamespace(
        data=SimpleNamespace(chat_template=None, eod_token="<|endoftext|>", seed=5),
        model=SimpleNamespace(seq_length=128),
        rl=SimpleNamespace(max_new_tokens=8, prompt_file=None, task="arithmetic", num_prompts=200, max_operand=99),
    )
    lines = []
    ds = rl_data.build_prompts(cfg, tiny_tokenizer, lines.append)
    first = ds.prompts[0]
    assert tiny_tokenizer.detokenize(first.ids) == f"<|user|>\n{first.question}\n<|assistant|>\n"
    assert int(first.answer) == eval(first.question[len("What is ") : -1])  # noqa: S307 - our own text
    lengths = sorted({len(p.ids) for p in ds.prompts})
    cfg.rl.max_new_tokens = 128 - lengths[-2]  # the longest prompts no longer fit
    too_long = sum(len(p.ids) == lengths[-1] for p in ds.prompts)
    ds = rl_data.build_prompts(cfg, tiny_tokenizer, lines.append)
    assert ds.skipped == too_long > 0 and len(ds) == 200 - too_long
    assert lines == [
        f"skipped {too_long} of 200 prompts: longer than model.seq_length=128 minus "
        f"rl.max_new_tokens={cfg.rl.max_new_tokens} tokens"
    ]


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    from runtime_support import _SHARED  # the session's tiny data, when another module made it

    from nemotron.runtime.data import gpt as data

    root = _SHARED.get("data") or tmp_path_factory.mktemp("tiny_data")
    d = SimpleNamespace(
        cache_dir=str(root / "tiny"), num_documents=2000, seed=1234, tokenizer_vocab_size=512, eod_token="<|endoftext|>"
    )
    return data.TokenizerAdapter(str(data.prepare_tiny(d).parent / "tokenizer.json"), d.eod_token)
