"""The eval stage's fast path (`inference_compat.fast_inference`) on real tiny models (GPT, and the
hybrid Mamba/attention/MoE nano3): it swaps the local core attention for SDPA and the single-partition
linear layers for `F.linear`, and the model computes what Megatron's modules compute (fp32 rounding),
greedy generations included; where SDPA does not apply (training, a query with no key) Megatron's
attention runs, bit for bit.
"""

from __future__ import annotations

import pytest
import torch
from runtime_support import megatron_world, resolved_run_config  # noqa: F401 - fixture

from nemotron.runtime.model import inference_compat
from nemotron.runtime.model.generate import SamplingSettings, causal_mask, generate

VOCAB = 300  # the tokenizer's; the model pads to 384
# modules changed: attention layers x 3 (core, qkv, proj), MLPs (MoE: experts + shared) x 2, Mamba x 2, output
SWAPPED = {"gpt_tiny": 2 * 3 + 2 * 2 + 1, "nano3_tiny": 3 + 2 * 2 + (4 + 1) * 2 + 1}


def _build(cfg):
    from nemotron.runtime import cpu_compat
    from nemotron.runtime.model.build import build_model

    cpu_compat.seed_model_parallel(7)
    return build_model(cfg, VOCAB)[0].eval()


@pytest.fixture(scope="module", params=["gpt_tiny", "nano3_tiny"])
def pair(request, megatron_world, tmp_path_factory):  # noqa: F811
    """(name, Megatron's modules, the same weights after fast_inference, modules it changed)."""
    run_dir = tmp_path_factory.mktemp("fast")
    cfg = resolved_run_config(["+recipe=gpt/pretrain", f"model={request.param}", "tracker=none"], run_dir=run_dir)
    megatron, fast = _build(cfg), _build(cfg)
    fast.load_state_dict(megatron.state_dict())
    return request.param, megatron, fast, inference_compat.fast_inference(fast)


def _tokens(b=3, length=11, seed=0):
    return torch.randint(1, VOCAB, (b, length), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _logits(model, tokens):
    positions = torch.arange(tokens.shape[1])[None].expand_as(tokens)
    return model(tokens, positions, causal_mask(tokens.shape[1]), runtime_gather_output=True)


def test_fast_inference_swaps_attention_and_linears_and_keeps_the_logits(pair):
    name, megatron, fast, changed = pair
    assert changed == SWAPPED[name]
    kinds = {type(m).__name__ for m in fast.modules()}
    assert {"SdpaAttention", "PlainColumnLinear", "PlainRowLinear"} <= kinds
    assert "SegmentAwareDotProductAttention" not in kinds
    mine, theirs = _logits(fast, _tokens()), _logits(megatron, _tokens())
    assert mine.shape == theirs.shape
    assert (mine - theirs).abs().max().item() <= 1e-5


def test_cached_greedy_generation_of_the_fast_model_is_megatrons(pair):
    _, megatron, fast, _ = pair
    prompts = _tokens(4, 7).tolist() + _tokens(2, 12, seed=1).tolist()
    settings = SamplingSettings(max_new_tokens=10, eos=VOCAB + 50, vocab_size=VOCAB, temperature=0.0)
    mine, theirs = generate(fast, prompts, settings), generate(megatron, prompts, settings)
    assert mine.responses == theirs.responses
    assert len({tuple(r) for r in mine.responses}) > 1


def _core_attentions(pair):
    _, megatron, fast, _ = pair
    slow = [m for m in megatron.modules() if type(m).__name__ == "SegmentAwareDotProductAttention"]
    quick = [m for m in fast.modules() if isinstance(m, inference_compat.SdpaAttention)]
    assert len(slow) == len(quick) >= 1
    return slow[0], quick[0]


def _qkv(seq=6, b=2, heads=4, groups=2, dim=16):
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(seq, b, heads, dim, generator=gen)
    return q, torch.randn(seq, b, groups, dim, generator=gen), torch.randn(seq, b, groups, dim, generator=gen)


def test_where_sdpa_does_not_apply_megatrons_attention_runs_bitwise(pair):
    slow, quick = _core_attentions(pair)
    q, k, v = _qkv()
    no_key = causal_mask(6).clone()
    no_key[..., 2, :] = True  # query 2 may attend to nothing: Megatron gives it a uniform row
    with torch.no_grad():
        assert torch.equal(quick(q, k, v, no_key), slow(q, k, v, no_key))
        quick.train(), slow.train()
        try:
            assert torch.equal(quick(q, k, v, causal_mask(6)), slow(q, k, v, causal_mask(6)))
        finally:
            quick.eval(), slow.eval()
        fused = quick(q, k, v, causal_mask(6))
    assert not torch.equal(fused, slow(q, k, v, causal_mask(6)))  # eval with a causal mask: SDPA ran
    assert torch.allclose(fused, slow(q, k, v, causal_mask(6)), atol=1e-6)
