"""Tiny Hugging Face models made here (random weights, `save_pretrained`; no hub), in the shapes of
model=gpt_tiny (Llama) and model=nano3_tiny (NemotronH), as tests/hf/hf_support.py makes them.

    path = make("llama" | "nemotron_h", out_dir)
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

VOCAB = 256


def _llama() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=192, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         rms_norm_eps=1e-5, tie_word_embeddings=False)  # fmt: skip
    return LlamaForCausalLM(config)


def _nemotron_h() -> torch.nn.Module:
    from transformers import NemotronHConfig, NemotronHForCausalLM

    config = NemotronHConfig(
        vocab_size=VOCAB, hidden_size=64, layers_block_type=["mamba", "attention", "mamba", "moe"],
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, intermediate_size=128,
        mamba_num_heads=8, mamba_head_dim=16, n_groups=2, ssm_state_size=16, n_routed_experts=4,
        num_experts_per_tok=2, moe_intermediate_size=64, moe_shared_expert_intermediate_size=64,
        routed_scaling_factor=2.5, max_position_embeddings=128, chunk_size=8,
    )  # fmt: skip
    model = NemotronHForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("dt_bias"):  # softplus(dt_bias) in [0.02, 0.1]: HF clamps dt below time_step_min
                dt = torch.empty_like(p).uniform_(0.02, 0.1)
                p.copy_(dt + torch.log(-torch.expm1(-dt)))
    return model


def make(kind: str, path: Path, seed: int = 0) -> Path:
    """Save a random `kind` model under `path`; norms away from 1 and larger embeddings, so that a
    swapped or missing tensor shows in the logits."""
    torch.manual_seed(seed)
    model = {"llama": _llama, "nemotron_h": _nemotron_h}[kind]()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif "embed" in name or "lm_head" in name:
                p.mul_(math.sqrt(10))
    model.save_pretrained(path)
    return path
