"""Tiny Hugging Face models built locally (random init, save_pretrained; no hub) and helpers."""

from __future__ import annotations

import math
from pathlib import Path

import torch

VOCAB = 256


def llama_dir(path: Path, tied: bool, seed: int = 0) -> Path:
    """A 2-layer LlamaForCausalLM (GQA 4/2 heads of 16, SwiGLU 192) in the shape of model=gpt_tiny."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=192,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        tie_word_embeddings=tied,
    )
    model = LlamaForCausalLM(config)
    _perturb_norms(model)
    model.save_pretrained(path)
    return path


def nemotron_h_config(**extra):
    """NemotronH in the shape of model=nano3_tiny: M*ME, hidden 64, 4 experts top-2, a shared expert (64
    wide here, 128 in nano3_tiny)."""
    from transformers import NemotronHConfig

    kw = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        layers_block_type=["mamba", "attention", "mamba", "moe"],
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        intermediate_size=128,
        mamba_num_heads=8,
        mamba_head_dim=16,
        n_groups=2,
        ssm_state_size=16,
        n_routed_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=64,
        moe_shared_expert_intermediate_size=64,
        routed_scaling_factor=2.5,
        max_position_embeddings=128,
        chunk_size=8,
    )
    kw.update(extra)
    return NemotronHConfig(**kw)


def nemotron_h_dir(path: Path, seed: int = 0) -> Path:
    from transformers import NemotronHForCausalLM

    torch.manual_seed(seed)
    model = NemotronHForCausalLM(nemotron_h_config())
    _perturb_norms(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("dt_bias"):  # softplus(dt_bias) in [0.02, 0.1]: HF clamps dt below time_step_min
                dt = torch.empty_like(p).uniform_(0.02, 0.1)
                p.copy_(dt + torch.log(-torch.expm1(-dt)))
            if name.endswith("e_score_correction_bias"):
                p.copy_(torch.randn_like(p) * 0.1)
        for buf_name, buf in model.named_buffers():
            if buf_name.endswith("e_score_correction_bias"):
                buf.copy_(torch.randn_like(buf) * 0.1)
    model.save_pretrained(path)
    return path


def _perturb_norms(model) -> None:
    """Norm weights away from 1 and larger embeddings, so a swapped or missing tensor shows."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif "embed" in name or "lm_head" in name:
                p.mul_(math.sqrt(10))


def hf_logits(path: Path, tokens: torch.Tensor) -> torch.Tensor:
    from nemotron.runtime import transformers_compat

    return transformers_compat.causal_lm_logits(transformers_compat.load_causal_lm(str(path)), tokens)
