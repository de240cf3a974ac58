"""FLOPs per token and MFU: the accounting matches a count by hand from the config."""

from __future__ import annotations

import pytest

from nemotron.runtime import cpu_compat
from nemotron.runtime.train import distributed
from nemotron.runtime.train.flops import device_peak_tflops, flops_per_token, mfu
from nemotron.runtime.model.build import build_model
from runtime_support import run_config, tiny_data_dir  # noqa: F401 - fixtures

VOCAB = 512


@pytest.fixture
def built(run_config):
    """build(recipe, *overrides) -> (model, cfg) on a world of one; torn down afterwards."""

    def _build(recipe, *overrides):
        cfg = run_config(recipe, *overrides)
        distributed.init(cfg)
        cpu_compat.seed_model_parallel(cfg.train.seed)
        model, _ = build_model(cfg, VOCAB)
        return model, cfg

    yield _build
    distributed.teardown()


def test_gpt_tiny_flops_match_hand_count(built):
    model, cfg = built("gpt/pretrain")
    m = cfg.model
    head_dim = m.hidden_size // m.num_attention_heads
    qkv = m.hidden_size * (m.num_attention_heads + 2 * m.num_query_groups) * head_dim
    proj = m.num_attention_heads * head_dim * m.hidden_size
    mlp = m.hidden_size * 2 * m.ffn_hidden_size + m.ffn_hidden_size * m.hidden_size  # SwiGLU
    output = VOCAB * m.hidden_size  # tied with the embedding: counted once as a matmul
    matmul = m.num_layers * (qkv + proj + mlp) + output
    attention = m.num_layers * 2 * 2 * m.seq_length * m.hidden_size * 0.5
    assert flops_per_token(model, cfg, VOCAB) == pytest.approx(6 * matmul + 3 * attention)


def test_more_experts_at_the_same_top_k_cost_only_the_router(built):
    model4, cfg4 = built("nano3/pretrain", "model.num_moe_experts=4")
    flops4 = flops_per_token(model4, cfg4, VOCAB)
    distributed.teardown()
    model8, cfg8 = built("nano3/pretrain", "model.num_moe_experts=8")
    flops8 = flops_per_token(model8, cfg8, VOCAB)
    moe_layers = cfg8.model.hybrid_layer_pattern.count("E")
    assert sum(p.numel() for p in model8.parameters()) > sum(p.numel() for p in model4.parameters())
    assert flops8 - flops4 == pytest.approx(6 * moe_layers * 4 * cfg8.model.hidden_size)  # router rows


def test_peak_lookup_and_mfu():
    assert device_peak_tflops("NVIDIA H200") == 989.0
    assert device_peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert device_peak_tflops("Some CPU") is None
    assert mfu(1000.0, 1e9, 989.0) == pytest.approx(1e12 / 989e12)
    assert mfu(1000.0, 1e9, None) is None


def test_progress_shows_tflops_and_mfu_only_when_flops_are_known():
    from types import SimpleNamespace

    from nemotron.runtime.train.flops import perf_text

    info = SimpleNamespace(data_parallel_size=2)
    cpu_run = SimpleNamespace(flops_per_token=None, peak_tflops=None, info=info)
    assert perf_text(cpu_run, 1e6) == ("", {})
    gpu_run = SimpleNamespace(flops_per_token=1e9, peak_tflops=989.0, info=info)
    text, metrics = perf_text(gpu_run, 2e5)  # 2e5 tokens/s over 2 replicas, 1 GFLOP each
    assert metrics["tflops_per_gpu"] == pytest.approx(100.0)
    assert metrics["mfu"] == pytest.approx(100.0 / 989.0)
    assert text == " | 100.0 TFLOP/s/GPU | MFU 10.1%"
