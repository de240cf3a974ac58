"""Hugging Face `config.json` <-> our `model` option, both ways, with every mismatch named.

`model_from_hf(hf)` gives the `model` fields an HF config implies (the option `import-hf` writes when
no `model=` is given); `mismatches(hf, model)` compares a chosen option with them, one line per field;
`hf_from_model(model)` is the config.json `export-hf` writes. Settings we cannot express (RoPE
scaling, biases, grouped routing, multi-token prediction...) are named by `unsupported(hf)`.
"""

from __future__ import annotations

from typing import Any, Dict, List

from nemotron.common.hybrid_pattern import hybrid_pattern

ARCHITECTURES = {"LlamaForCausalLM": "gpt", "NemotronHForCausalLM": "nano3"}
"""HF architecture -> the family of model options it maps to."""
_LAYER_SYMBOL = {"linear_attention": "M", "mamba": "M", "full_attention": "*", "attention": "*", "moe": "E", "mlp": "-"}
_SYMBOL_LAYER = {"M": "linear_attention", "*": "full_attention", "E": "moe", "-": "mlp"}
_NOT_COMPARED = {"seq_length", "init_method_std", "make_vocab_size_divisible_by"}
"""Fields an HF config does not pin down (training settings, or initialisation only)."""


class ConfigMismatch(ValueError):
    """An HF config and a model option disagree, or the HF config uses what we cannot express."""


def architecture(hf: Dict[str, Any], source: str = "config.json") -> str:
    """The mapped family of `hf` ('gpt' or 'nano3'); ConfigMismatch listing the mapped ones."""
    names = hf.get("architectures") or [hf.get("model_type", "?")]
    for name in names:
        if name in ARCHITECTURES:
            return ARCHITECTURES[name]
    known = ", ".join(f"{a} (model={f}*)" for a, f in ARCHITECTURES.items())
    raise ConfigMismatch(f"{source}: architecture {names[0]!r} is not mapped; mapped: {known}")


def _rope_theta(hf: Dict[str, Any]) -> float:
    rope = hf.get("rope_parameters") or {}
    return float(rope.get("rope_theta", hf.get("rope_theta", 10000.0)))


def _llama(hf: Dict[str, Any]) -> Dict[str, Any]:
    heads = hf["num_attention_heads"]
    return {
        "arch": "gpt",
        "num_layers": hf["num_hidden_layers"],
        "hidden_size": hf["hidden_size"],
        "num_attention_heads": heads,
        "num_query_groups": hf.get("num_key_value_heads") or heads,
        "kv_channels": hf.get("head_dim") or hf["hidden_size"] // heads,
        "ffn_hidden_size": hf["intermediate_size"],
        "vocab_size": hf["vocab_size"],
        "seq_length": hf.get("max_position_embeddings", 2048),
        "normalization": "RMSNorm",
        "layernorm_epsilon": float(hf.get("rms_norm_eps", 1e-6)),
        "activation": "swiglu",
        "position_embedding_type": "rope",
        "rotary_base": int(_rope_theta(hf)),
        "add_bias_linear": False,
        "share_embeddings_and_output_weights": bool(hf.get("tie_word_embeddings")),
        "init_method_std": hf.get("initializer_range", 0.02),
    }


def _layer_types(hf: Dict[str, Any]) -> List[str]:
    if hf.get("layers_block_type"):
        return list(hf["layers_block_type"])
    return [_SYMBOL_LAYER[s] for s in hf.get("hybrid_override_pattern", "")]


def _nemotron_h(hf: Dict[str, Any]) -> Dict[str, Any]:
    pattern = "".join(_LAYER_SYMBOL[t] for t in _layer_types(hf))
    out = {
        "arch": "hybrid",
        "hybrid_layer_pattern": pattern,
        "num_layers": len(pattern),
        "hidden_size": hf["hidden_size"],
        "num_attention_heads": hf["num_attention_heads"],
        "num_query_groups": hf["num_key_value_heads"],
        "kv_channels": hf["head_dim"],
        "ffn_hidden_size": hf["intermediate_size"],
        "vocab_size": hf["vocab_size"],
        "seq_length": hf.get("max_position_embeddings", 4096),
        "normalization": "RMSNorm",
        "layernorm_epsilon": float(hf.get("layer_norm_epsilon", 1e-5)),
        "activation": "squared_relu",
        "position_embedding_type": "none",
        "add_bias_linear": False,
        "share_embeddings_and_output_weights": bool(hf.get("tie_word_embeddings")),
        "init_method_std": hf.get("initializer_range", 0.02),
        "mamba_num_heads": hf["mamba_num_heads"],
        "mamba_head_dim": hf["mamba_head_dim"],
        "mamba_state_dim": hf["ssm_state_size"],
        "mamba_num_groups": hf["n_groups"],
    }
    if "E" in pattern:
        out.update(
            {
                "num_moe_experts": hf["n_routed_experts"],
                "moe_router_topk": hf["num_experts_per_tok"],
                "moe_ffn_hidden_size": hf["moe_intermediate_size"],
                "moe_shared_expert_intermediate_size": hf["moe_shared_expert_intermediate_size"],
                "moe_router_score_function": "sigmoid",
                "moe_router_enable_expert_bias": True,
                "moe_router_topk_scaling_factor": float(hf.get("routed_scaling_factor", 1.0)),
                "moe_router_dtype": "fp32",
            }
        )
    return out


def model_from_hf(hf: Dict[str, Any]) -> Dict[str, Any]:
    """The `model` fields `hf` implies (raises ConfigMismatch for what we cannot express)."""
    family = architecture(hf)
    problems = unsupported(hf)
    if problems:
        raise ConfigMismatch("config.json uses what we do not map:\n" + "\n".join(problems))
    return _llama(hf) if family == "gpt" else _nemotron_h(hf)


def _check(problems: List[str], hf: Dict[str, Any], key: str, ok: Any, why: str) -> None:
    value = hf.get(key, ok if not isinstance(ok, tuple) else ok[0])
    allowed = ok if isinstance(ok, tuple) else (ok,)
    if value not in allowed:
        problems.append(f"{key}={value!r}: {why}")


def unsupported(hf: Dict[str, Any]) -> List[str]:
    """One line per HF setting our model cannot reproduce."""
    problems: List[str] = []
    if architecture(hf) == "gpt":
        rope = (hf.get("rope_parameters") or {}).get("rope_type", "default")
        if rope != "default" or hf.get("rope_scaling"):
            problems.append(f"rope_type={rope!r}: only unscaled RoPE is mapped")
        _check(problems, hf, "attention_bias", False, "q/k/v/o biases are not mapped")
        _check(problems, hf, "mlp_bias", False, "MLP biases are not mapped")
        _check(problems, hf, "hidden_act", "silu", "Llama's SwiGLU needs silu")
        return problems
    _check(problems, hf, "num_nextn_predict_layers", (0, None), "multi-token prediction is not mapped")
    _check(problems, hf, "n_group", (1, None), "grouped expert routing is not mapped")
    _check(problems, hf, "moe_latent_size", None, "latent MoE projections are not mapped")
    _check(problems, hf, "n_shared_experts", (1, None), "exactly one shared expert is mapped")
    _check(problems, hf, "norm_topk_prob", True, "Megatron normalises the top-k sigmoid scores")
    _check(problems, hf, "conv_kernel", 4, "the Mamba conv width is 4")
    _check(problems, hf, "use_bias", False, "biases are not mapped")
    _check(problems, hf, "mamba_proj_bias", False, "Mamba projection biases are not mapped")
    _check(problems, hf, "use_conv_bias", True, "the Mamba conv has a bias")
    _check(problems, hf, "mlp_hidden_act", "relu2", "NemotronH MLPs use squared ReLU")
    _check(problems, hf, "layer_norm_epsilon", 1e-5, "the Mamba gated norm's epsilon is fixed at 1e-5")
    return problems


def _norm(value: Any) -> Any:
    value = getattr(value, "value", value)
    return float(value) if isinstance(value, float) else value


def mismatches(hf: Dict[str, Any], model: Any) -> List[str]:
    """One line per `model` field that differs from what `hf` implies (empty: they agree)."""
    want = model_from_hf(hf)
    lines = []
    for key, value in want.items():
        if key in _NOT_COMPARED:
            continue
        have = _norm(model.get(key)) if key != "hybrid_layer_pattern" else hybrid_pattern(model)
        if key == "kv_channels" and have is None:
            have = model.hidden_size // model.num_attention_heads
        if key == "num_query_groups" and have is None:
            have = model.num_attention_heads
        if have != value:
            lines.append(f"model.{key}={have!r} but config.json implies {value!r}")
    return lines


# ---- our model option -> config.json -------------------------------------------------------------


def _common_hf(m: Any, vocab_size: int) -> Dict[str, Any]:
    heads = m.num_attention_heads
    return {
        "hidden_size": m.hidden_size,
        "num_attention_heads": heads,
        "num_key_value_heads": m.num_query_groups or heads,
        "head_dim": m.kv_channels or m.hidden_size // heads,
        "vocab_size": vocab_size,
        "max_position_embeddings": m.seq_length,
        "initializer_range": m.init_method_std,
        "tie_word_embeddings": bool(m.share_embeddings_and_output_weights),
        "torch_dtype": "float32",
    }


def _llama_hf(m: Any) -> Dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "num_hidden_layers": m.num_layers,
        "intermediate_size": m.ffn_hidden_size or 4 * m.hidden_size,
        "hidden_act": "silu",
        "rms_norm_eps": m.layernorm_epsilon,
        "attention_bias": False,
        "mlp_bias": False,
        "rope_parameters": {"rope_type": "default", "rope_theta": float(m.rotary_base)},
    }


def _nemotron_h_hf(m: Any) -> Dict[str, Any]:
    pattern = hybrid_pattern(m)
    out = {
        "architectures": ["NemotronHForCausalLM"],
        "model_type": "nemotron_h",
        "layers_block_type": [_SYMBOL_LAYER[s] for s in pattern],
        "intermediate_size": m.ffn_hidden_size or 4 * m.hidden_size,
        "mlp_hidden_act": "relu2",
        "layer_norm_epsilon": m.layernorm_epsilon,
        "mamba_num_heads": m.mamba_num_heads,
        "mamba_head_dim": m.mamba_head_dim,
        "ssm_state_size": m.mamba_state_dim,
        "n_groups": m.mamba_num_groups,
        "conv_kernel": 4,
        "use_conv_bias": True,
        "use_bias": False,
        "mamba_proj_bias": False,
        "attention_bias": False,
        "mlp_bias": False,
        "num_nextn_predict_layers": 0,
    }
    if m.num_moe_experts:
        out.update(
            {
                "n_routed_experts": m.num_moe_experts,
                "num_experts_per_tok": m.moe_router_topk,
                "moe_intermediate_size": m.moe_ffn_hidden_size or m.ffn_hidden_size,
                "moe_shared_expert_intermediate_size": m.moe_shared_expert_intermediate_size,
                "n_shared_experts": 1,
                "routed_scaling_factor": m.moe_router_topk_scaling_factor or 1.0,
                "n_group": 1,
                "topk_group": 1,
                "norm_topk_prob": True,
            }
        )
    return out


def hf_from_model(m: Any, vocab_size: int) -> Dict[str, Any]:
    """The config.json of model option `m` whose embedding has `vocab_size` rows."""
    arch = str(getattr(m.arch, "value", m.arch))
    return {**_common_hf(m, vocab_size), **(_llama_hf(m) if arch == "gpt" else _nemotron_h_hf(m))}


def exportable(m: Any) -> List[str]:
    """One line per `model` setting no mapped HF architecture can hold (empty: exportable)."""
    arch, problems = str(getattr(m.arch, "value", m.arch)), []
    want = ("swiglu", "rope") if arch == "gpt" else ("squared_relu", "none")
    have = (
        str(getattr(m.activation, "value", m.activation)),
        str(getattr(m.position_embedding_type, "value", m.position_embedding_type)),
    )
    for key, w, h in zip(("activation", "position_embedding_type"), want, have, strict=True):
        if w != h:
            problems.append(f"model.{key}={h!r}: {ARCH_NAMES[arch]} needs {w!r}")
    if m.add_bias_linear:
        problems.append("model.add_bias_linear=true: biases are not mapped")
    if arch == "hybrid" and m.num_moe_experts and not m.moe_shared_expert_intermediate_size:
        problems.append("model.moe_shared_expert_intermediate_size=null: NemotronH MoE has a shared expert")
    return problems


ARCH_NAMES = {"gpt": "LlamaForCausalLM", "hybrid": "NemotronHForCausalLM"}
