"""Which Hugging Face tensors make which Megatron-Core parameter, and how, group by group.

A `Rule` joins one or more HF tensors into one Megatron tensor (and splits it back). The classic
traps live here: Megatron's `linear_qkv` holds q, k and v interleaved per query group
([q heads of group 0, k0, v0, q heads of group 1, k1, v1, ...]) where HF keeps q_proj, k_proj and
v_proj apart; SwiGLU's `linear_fc1` is [gate; up] stacked on dim 0. `groups(model)` yields the rules
of the embedding, then one group per layer, then the final norm and output layer: the unit of
streaming. Megatron names are those of the local (non-TE) layer spec; `canonical()` maps the TE
spec's fused-norm names onto them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Tuple

import torch

from nemotron.common.hybrid_pattern import hybrid_pattern

Tensors = List[torch.Tensor]


def _one(tensors: Tensors) -> torch.Tensor:
    return tensors[0]


def _unone(tensor: torch.Tensor) -> Tensors:
    return [tensor]


@dataclass(frozen=True)
class Rule:
    """Megatron tensor `ours` = join(HF tensors `theirs`); split() inverts join()."""

    ours: str
    theirs: Tuple[str, ...]
    join: Callable[[Tensors], torch.Tensor] = _one
    split: Callable[[torch.Tensor], Tensors] = _unone
    parts: int = 1
    """Equal-sized blocks stacked on the sharded dim (SwiGLU fc1: 2), each split across TP on its own."""


def qkv_rule(ours: str, prefix: str, m: Any) -> Rule:
    """q_proj/k_proj/v_proj <-> Megatron's linear_qkv, interleaved per query group."""
    heads, groups = m.num_attention_heads, m.num_query_groups or m.num_attention_heads
    dim = m.kv_channels or m.hidden_size // heads
    per_group = heads // groups

    def join(t: Tensors) -> torch.Tensor:
        q, k, v = (x.reshape(groups, -1, x.shape[-1]) for x in t)
        return torch.cat([q, k, v], dim=1).reshape(-1, t[0].shape[-1])

    def split(t: torch.Tensor) -> Tensors:
        grouped = t.reshape(groups, (per_group + 2) * dim, t.shape[-1])
        q, k, v = torch.split(grouped, [per_group * dim, dim, dim], dim=1)
        return [x.reshape(-1, t.shape[-1]).contiguous() for x in (q, k, v)]

    names = tuple(f"{prefix}{p}_proj.weight" for p in "qkv")
    return Rule(ours, names, join, split)


def _stack(t: Tensors) -> torch.Tensor:
    return torch.cat(t, dim=0)


def _halves(t: torch.Tensor) -> Tensors:
    return [x.contiguous() for x in torch.chunk(t, 2, dim=0)]


def _llama_layer(i: int, m: Any) -> List[Rule]:
    ours, hf = f"decoder.layers.{i}.", f"model.layers.{i}."
    return [
        Rule(f"{ours}input_layernorm.weight", (f"{hf}input_layernorm.weight",)),
        qkv_rule(f"{ours}self_attention.linear_qkv.weight", f"{hf}self_attn.", m),
        Rule(f"{ours}self_attention.linear_proj.weight", (f"{hf}self_attn.o_proj.weight",)),
        Rule(f"{ours}pre_mlp_layernorm.weight", (f"{hf}post_attention_layernorm.weight",)),
        Rule(
            f"{ours}mlp.linear_fc1.weight",
            (f"{hf}mlp.gate_proj.weight", f"{hf}mlp.up_proj.weight"),
            _stack,
            _halves,
            parts=2,
        ),
        Rule(f"{ours}mlp.linear_fc2.weight", (f"{hf}mlp.down_proj.weight",)),
    ]


_MAMBA = ("A_log", "D", "dt_bias", "conv1d.weight", "conv1d.bias", "in_proj.weight", "norm.weight", "out_proj.weight")


def _moe(ours: str, hf: str, m: Any) -> List[Rule]:
    rules = [
        Rule(f"{ours}pre_mlp_layernorm.weight", (f"{hf}norm.weight",)),
        Rule(f"{ours}mlp.router.weight", (f"{hf}mixer.gate.weight",)),
        Rule(f"{ours}mlp.router.expert_bias", (f"{hf}mixer.gate.e_score_correction_bias",)),
    ]
    for j in range(m.num_moe_experts):
        for fc, proj in (("fc1", "up"), ("fc2", "down")):
            rules.append(
                Rule(
                    f"{ours}mlp.experts.local_experts.{j}.linear_{fc}.weight",
                    (f"{hf}mixer.experts.{j}.{proj}_proj.weight",),
                )
            )
    for fc, proj in (("fc1", "up"), ("fc2", "down")):
        rules.append(
            Rule(f"{ours}mlp.shared_experts.linear_{fc}.weight", (f"{hf}mixer.shared_experts.{proj}_proj.weight",))
        )
    return rules


def _hybrid_layer(i: int, symbol: str, m: Any) -> List[Rule]:
    ours, hf = f"decoder.layers.{i}.", f"backbone.layers.{i}."
    if symbol == "M":
        return [Rule(f"{ours}norm.weight", (f"{hf}norm.weight",))] + [
            Rule(f"{ours}mixer.{name}", (f"{hf}mixer.{name}",)) for name in _MAMBA
        ]
    if symbol == "*":
        return [
            Rule(f"{ours}input_layernorm.weight", (f"{hf}norm.weight",)),
            qkv_rule(f"{ours}self_attention.linear_qkv.weight", f"{hf}mixer.", m),
            Rule(f"{ours}self_attention.linear_proj.weight", (f"{hf}mixer.o_proj.weight",)),
        ]
    if symbol == "E":
        return _moe(ours, hf, m)
    return [
        Rule(f"{ours}pre_mlp_layernorm.weight", (f"{hf}norm.weight",)),
        Rule(f"{ours}mlp.linear_fc1.weight", (f"{hf}mixer.up_proj.weight",)),
        Rule(f"{ours}mlp.linear_fc2.weight", (f"{hf}mixer.down_proj.weight",)),
    ]


def _arch(m: Any) -> str:
    return str(getattr(m.arch, "value", m.arch))


def groups(m: Any) -> Iterator[Tuple[str, List[Rule]]]:
    """(name, rules) of the embedding, each layer, and the head, in order."""
    gpt = _arch(m) == "gpt"
    hf_model = "model." if gpt else "backbone."
    embed = f"{hf_model}embed_tokens.weight" if gpt else f"{hf_model}embeddings.weight"
    yield "embedding", [Rule("embedding.word_embeddings.weight", (embed,))]
    if gpt:
        for i in range(m.num_layers):
            yield f"layer {i}", _llama_layer(i, m)
    else:
        for i, symbol in enumerate(hybrid_pattern(m)):
            yield f"layer {i} ({symbol})", _hybrid_layer(i, symbol, m)
    final = "decoder.final_layernorm.weight" if gpt else "decoder.final_norm.weight"
    head = [Rule(final, (f"{hf_model}norm.weight" if gpt else f"{hf_model}norm_f.weight",))]
    if not m.share_embeddings_and_output_weights:
        head.append(Rule("output_layer.weight", ("lm_head.weight",)))
    yield "head", head


_TE_NAMES = {
    "self_attention.linear_qkv.layer_norm_weight": "input_layernorm.weight",
    "mlp.linear_fc1.layer_norm_weight": "pre_mlp_layernorm.weight",
    "mixer.in_proj.layer_norm_weight": "norm.weight",
}


def canonical(key: str) -> str:
    """The local-spec name of a state-dict key (TE fuses pre-norms into the next linear layer)."""
    for te, local in _TE_NAMES.items():
        if key.endswith(te):
            return key[: -len(te)] + local
    return key


def hf_names(m: Any) -> List[str]:
    """Every HF tensor name the model option maps."""
    return [name for _, rules in groups(m) for rule in rules for name in rule.theirs]


def mamba_parts(m: Any) -> dict:
    """Megatron Mamba tensors stacked from parts each split across TP on its own: name -> sizes."""
    d = m.mamba_num_heads * m.mamba_head_dim
    gn = m.mamba_num_groups * m.mamba_state_dim
    return {
        "mixer.in_proj.weight": [d, d, gn, gn, m.mamba_num_heads],
        "mixer.conv1d.weight": [d, gn, gn],
        "mixer.conv1d.bias": [d, gn, gn],
    }
