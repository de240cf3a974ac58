"""nemotron.runtime.model.build: config translation and the errors a wrong model config gets."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from nemotron.runtime.stages import pretrain
from nemotron.runtime.model import build as model
from runtime_support import run_config, tiny_data_dir  # noqa: F401 - fixtures


def test_vocab_is_padded_to_a_multiple_of_divisor_times_tp():
    m = OmegaConf.create({"vocab_size": None, "make_vocab_size_divisible_by": 128})
    assert model.padded_vocab_size(m, 512, tp_size=1) == 512
    assert model.padded_vocab_size(m, 513, tp_size=1) == 640
    assert model.padded_vocab_size(m, 513, tp_size=2) == 768


def test_explicit_vocab_smaller_than_the_tokenizer_is_refused():
    m = OmegaConf.create({"vocab_size": 100, "make_vocab_size_divisible_by": 128})
    with pytest.raises(ValueError, match="model.vocab_size=100 is smaller"):
        model.padded_vocab_size(m, 512, tp_size=1)


def test_gpt_tiny_config_maps_to_megatron_fields(run_config):
    config = model.transformer_config(run_config("gpt/pretrain"))

    assert (config.num_layers, config.hidden_size, config.num_query_groups) == (2, 64, 2)
    assert config.gated_linear_unit and config.normalization == "RMSNorm"
    assert config.use_cpu_initialization and not config.bf16


def test_nano3_tiny_is_a_local_moe_hybrid(run_config):
    cfg = run_config("nano3/pretrain")
    config = model.transformer_config(cfg)

    assert config.num_moe_experts == 4 and not config.moe_grouped_gemm
    assert config.moe_token_dispatcher_type == "allgather"
    assert not model.use_te_spec(cfg)


def test_nano3_router_and_shared_expert_map_to_megatron_fields(run_config):
    config = model.transformer_config(run_config("nano3/pretrain", "model=nano3"))

    assert (config.num_moe_experts, config.moe_router_topk, config.moe_ffn_hidden_size) == (
        128, 6, 1856)
    assert config.moe_router_score_function == "sigmoid" and config.moe_router_enable_expert_bias
    assert config.moe_router_topk_scaling_factor == 2.5 and config.moe_router_dtype == "fp32"
    assert config.moe_router_load_balancing_type == "seq_aux_loss"
    assert config.moe_shared_expert_intermediate_size == 3712
    assert (config.mamba_num_heads, config.mamba_head_dim, config.mamba_num_groups) == (64, 64, 8)
    assert (config.kv_channels, config.num_query_groups) == (128, 2)


def test_nano3_tiny_has_the_real_router_shared_expert_and_no_position_embedding(run_config):
    cfg = run_config("nano3/pretrain", "train.steps=6")
    config = model.transformer_config(cfg)
    assert config.moe_router_score_function == "sigmoid" and config.moe_router_enable_expert_bias
    assert config.moe_router_topk_scaling_factor == 2.5 and config.moe_router_dtype == "fp32"
    assert config.moe_router_load_balancing_type == "seq_aux_loss"
    assert config.moe_shared_expert_intermediate_size == 128
    assert cfg.model.position_embedding_type == "none"
    losses = pretrain.run(cfg).losses

    assert losses[-1] < losses[0] - 0.5, losses


@pytest.mark.parametrize("recompute, granularity, method", [
    ("none", None, None), ("selective", "selective", None), ("full", "full", "uniform")])
def test_recompute_maps_to_megatron_granularity(run_config, recompute, granularity, method):
    config = model.transformer_config(run_config("gpt/pretrain", f"train.recompute={recompute}"))

    assert (config.recompute_granularity, config.recompute_method) == (granularity, method)


def test_full_recompute_of_a_hybrid_is_refused_where_megatron_cannot(run_config):
    stack = model.hybrid_classes()[1]
    if hasattr(stack, "_checkpointed_forward"):
        pytest.skip(f"{stack.__name__} recomputes whole layers in this megatron-core")
    with pytest.raises(ValueError, match="train.recompute=full: .* use train.recompute=selective"):
        model.transformer_config(run_config("nano3/pretrain", "train.recompute=full"))


def test_mamba_mixer_is_the_pure_pytorch_one_without_mamba_ssm():
    pytest.importorskip("nemotron.runtime.model.mamba2")
    assert model.mamba_mixer_class().__name__ == "TorchMamba2Mixer"


@pytest.mark.parametrize("overrides, message", [
    (["parallel.tensor_model_parallel_size=2"], "needs parallel.sequence_parallel=true"),
    (["parallel.tensor_model_parallel_size=2", "parallel.sequence_parallel=true"],
     "sequence_parallel=true needs the Transformer Engine"),
    (["model.add_bias_linear=true"], "add_bias_linear=true with MoE"),
    (["model.hybrid_layer_pattern=*E*"], "must have one symbol per layer"),
    (["model.num_moe_experts=null"], "has E \\(MoE\\) layers: set model.num_moe_experts"),
    (["model.moe_router_score_function=softmax", "model.moe_router_enable_expert_bias=true"],
     "needs model.moe_router_score_function=sigmoid"),
])
def test_hybrid_settings_that_cannot_train_are_refused_up_front(run_config, overrides, message):
    with pytest.raises(ValueError, match=message):
        model.transformer_config(run_config("nano3/pretrain", *overrides))
