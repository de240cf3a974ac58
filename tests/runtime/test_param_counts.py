"""Parameter counts of the shipped full-size models, built on the meta device (nothing allocated).

`model=nano3` must be Nemotron 3 Nano (31.6B total, 3.2B active without the embedding lookup, 3.6B
with it), `gpt_1b` Llama-3.2-1B and `gpt_8b` Llama-3-8B. The counts come from Megatron-Core building
the real modules on `torch.device("meta")`; a closed form of the nano3 layers cross-checks them, and
the meta path is cross-checked against a real build of the tiny model.
"""

from __future__ import annotations

import pytest

from nemotron.runtime import cpu_compat
from nemotron.runtime.train import distributed
from nemotron.runtime.model import build as model
from nemotron.runtime.model import param_counts
from runtime_support import resolved_run_config

TOKENIZER_VOCAB = 512
"""Vocabulary of the tiny tokenizer; the full-size models set model.vocab_size themselves."""


@pytest.fixture(scope="module")
def config_for(tmp_path_factory):
    """config_for(recipe, *overrides): a resolved config, with Megatron's world-of-one state up."""
    run_dir = tmp_path_factory.mktemp("param_counts")

    def _make(recipe: str, *overrides: str):
        return resolved_run_config([f"+recipe={recipe}", "tracker=none", *overrides], run_dir)

    distributed.init(_make("gpt/pretrain"))
    cpu_compat.seed_model_parallel(1234)  # the Mamba mixer forks the RNG tracker while building
    yield _make
    distributed.teardown()


def nano3_closed_form(m) -> tuple[int, int]:
    """(total, active) parameters of a hybrid M/*/E model, layer by layer, from its config."""
    h, kv = m.hidden_size, m.kv_channels
    d_inner = m.mamba_num_heads * m.mamba_head_dim
    bc = 2 * m.mamba_num_groups * m.mamba_state_dim
    mamba = (h * (2 * d_inner + bc + m.mamba_num_heads)  # in_proj -> z, x, B, C, dt
             + (d_inner + bc) * (4 + 1)                  # depthwise conv1d (width 4) + bias
             + 3 * m.mamba_num_heads                     # dt_bias, A_log, D
             + d_inner + d_inner * h + h)                # gated norm, out_proj, pre-norm
    attention = (h * kv * (m.num_attention_heads + 2 * m.num_query_groups)  # qkv
                 + m.num_attention_heads * kv * h + h)                    # proj, pre-norm
    expert = 2 * h * m.moe_ffn_hidden_size  # fc1 + fc2, squared-ReLU (not gated)
    moe_shared = m.num_moe_experts * h + 2 * h * m.moe_shared_expert_intermediate_size + h
    pattern = m.hybrid_layer_pattern
    embeddings = 2 * m.vocab_size * h + h  # untied input/output, final norm
    shared = (embeddings + pattern.count("M") * mamba + pattern.count("*") * attention
              + pattern.count("E") * moe_shared)
    moe_layers = pattern.count("E")
    return (shared + moe_layers * m.num_moe_experts * expert,
            shared + moe_layers * m.moe_router_topk * expert)


def test_nano3_has_the_published_31_6b_total_and_3_2b_active_parameters(config_for):
    cfg = config_for("nano3/pretrain", "model=nano3")
    counts = param_counts.meta_parameter_counts(cfg, TOKENIZER_VOCAB)

    assert (counts.total, counts.active) == nano3_closed_form(cfg.model)
    assert counts.total == 31_577_937_344  # "31.6B total"
    assert counts.active == 3_580_073_408  # "3.6B active with embeddings"
    assert counts.active - counts.embedding == 3_227_751_872  # "3.2B active" (no lookup table)
    assert counts.active_without_embeddings == 2_875_430_336
    assert counts.embedding == counts.output_layer == 131_072 * 2688
    assert counts.routed_experts == 23 * 128 * 2 * 2688 * 1856


@pytest.mark.parametrize("option, total, embedding", [
    ("gpt_1b", 1_235_814_400, 128_256 * 2048),  # Llama-3.2-1B: 1.24B, tied embeddings
    ("gpt_8b", 8_030_261_248, 128_256 * 4096),  # Llama-3-8B: 8.03B, untied
])
def test_llama_style_gpts_match_the_llama_parameter_counts(config_for, option, total, embedding):
    counts = param_counts.meta_parameter_counts(config_for("gpt/pretrain", f"model={option}"),
                                         TOKENIZER_VOCAB)

    assert counts.total == counts.active == total
    assert counts.embedding == embedding and counts.routed_experts == 0


def test_meta_count_equals_a_real_build_of_the_tiny_hybrid(config_for):
    cfg = config_for("nano3/pretrain", "model.moe_shared_expert_intermediate_size=32")
    counts = param_counts.meta_parameter_counts(cfg, TOKENIZER_VOCAB)
    built, _ = model.build_model(cfg, TOKENIZER_VOCAB)

    assert counts == param_counts.count_parameters(built, cfg.model)
    assert counts.total == sum(p.numel() for p in built.parameters())
    assert all(p.device.type == "cpu" for p in built.parameters())
    routed_per_layer = 4 * 2 * 64 * 64  # 4 experts of fc1 + fc2, hidden 64, expert FFN 64
    assert counts.routed_experts == routed_per_layer
    assert counts.total - counts.active == routed_per_layer // 2  # top-2 of 4
