"""Build the Megatron-Core model that `cfg.model` and `cfg.parallel` describe.

`arch=gpt` is a GPTModel (local layer spec; the Transformer Engine spec where TE imports);
`arch=hybrid` is Megatron's Mamba/hybrid model (`MambaModel` in 0.16, `HybridModel` in 0.19) over
`model.hybrid_layer_pattern`: `M` Mamba-2, `*` attention, `-` MLP, `E` MoE. Without Transformer
Engine the hybrid stack is a local spec built here; Mamba layers then use `mamba_mixer_class()`.
fp32 with CPU initialisation on CPU; bf16 (Float16Module) on CUDA. `train.recompute` becomes
Megatron's activation recomputation (selective: attention core; full: every layer).
Parameter counts without allocating weights: `nemotron.runtime.model.param_counts`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import sys
import inspect
import math
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from nemotron.common import stack as stacks
from nemotron.common.hybrid_pattern import hybrid_pattern
from nemotron.runtime import cpu_compat
from nemotron.runtime.model.stack_check import runtime_stack


def _str(value: Any) -> str:
    """Enum-valued config fields arrive as strings (resolved OmegaConf) or as Enum members."""
    return str(getattr(value, "value", value))


def padded_vocab_size(model_cfg: Any, tokenizer_vocab_size: int, tp_size: int) -> int:
    """`model.vocab_size`, or the tokenizer's padded to make_vocab_size_divisible_by x TP."""
    if model_cfg.vocab_size:
        if model_cfg.vocab_size < tokenizer_vocab_size:
            raise ValueError(f"model.vocab_size={model_cfg.vocab_size} is smaller than the "
                             f"tokenizer's {tokenizer_vocab_size} tokens")
        return int(model_cfg.vocab_size)
    multiple = model_cfg.make_vocab_size_divisible_by * tp_size
    return int(math.ceil(tokenizer_vocab_size / multiple) * multiple)


def _activation_kwargs(activation: str) -> dict:
    from megatron.core.activations import squared_relu

    if activation == "swiglu":
        return {"gated_linear_unit": True, "activation_func": F.silu}
    if activation == "squared_relu":
        return {"gated_linear_unit": False, "activation_func": squared_relu}
    if activation == "gelu":
        return {"gated_linear_unit": False, "activation_func": F.gelu}
    raise ValueError(f"model.activation={activation!r} is not one of gelu, swiglu, squared_relu")


def _moe_kwargs(m: Any, grouped_gemm: bool) -> dict:
    if not m.num_moe_experts:
        return {}
    balancing = m.moe_router_load_balancing_type
    if balancing is None:
        balancing = "aux_loss" if m.moe_aux_loss_coeff > 0 else "none"
    return {
        "num_moe_experts": m.num_moe_experts,
        "moe_router_topk": m.moe_router_topk,
        "moe_ffn_hidden_size": m.moe_ffn_hidden_size or m.ffn_hidden_size,
        "moe_aux_loss_coeff": m.moe_aux_loss_coeff,
        "moe_router_load_balancing_type": _str(balancing),
        "moe_router_score_function": _str(m.moe_router_score_function),
        "moe_router_enable_expert_bias": m.moe_router_enable_expert_bias,
        "moe_router_topk_scaling_factor": m.moe_router_topk_scaling_factor,
        "moe_router_dtype": _str(m.moe_router_dtype) if m.moe_router_dtype else None,
        "moe_shared_expert_intermediate_size": m.moe_shared_expert_intermediate_size,
        "moe_grouped_gemm": grouped_gemm,
        "moe_token_dispatcher_type": "allgather",
    }


def _recompute_kwargs(recompute: str) -> dict:
    """train.recompute -> Megatron: selective recomputes the attention core, full every layer."""
    if recompute == "none":
        return {}
    if recompute == "selective":
        return {"recompute_granularity": "selective"}
    return {"recompute_granularity": "full", "recompute_method": "uniform",
            "recompute_num_layers": 1}


def _check_hybrid_pattern(m: Any) -> None:
    pattern = hybrid_pattern(m)
    if not pattern or len(pattern) != m.num_layers:
        raise ValueError(f"model.hybrid_layer_pattern={pattern!r} must have one symbol per layer "
                         f"(model.num_layers={m.num_layers}) for arch=hybrid")
    if "E" in pattern and not m.num_moe_experts:
        raise ValueError(f"model.hybrid_layer_pattern={pattern!r} has E (MoE) layers: "
                         "set model.num_moe_experts")


def _check_limits(cfg: Any) -> None:
    m, p = cfg.model, cfg.parallel
    if _str(m.arch) == "hybrid":
        _check_hybrid_pattern(m)
    if p.sequence_parallel and p.tensor_model_parallel_size > 1 and not use_te_spec(cfg):
        raise ValueError(
            "parallel.sequence_parallel=true needs the Transformer Engine layer spec (Megatron's "
            "torch norm, used without TE, does not support it); Transformer Engine is not available"
        )
    if m.num_moe_experts and p.tensor_model_parallel_size > 1 and not p.sequence_parallel:
        raise ValueError(
            "MoE (model.num_moe_experts) with parallel.tensor_model_parallel_size>1 needs "
            "parallel.sequence_parallel=true (Megatron-Core's MoE layer refuses to train "
            "without it)"
        )
    if cpu_compat.on_cpu() and m.num_moe_experts and m.add_bias_linear:
        raise ValueError(
            "model.add_bias_linear=true with MoE (model.num_moe_experts) fails on CPU without "
            "Transformer Engine (the expert bias is added in place on a view); set it to false"
        )
    _check_router_and_recompute(cfg)


def _check_router_and_recompute(cfg: Any) -> None:
    m = cfg.model
    if m.moe_router_enable_expert_bias and _str(m.moe_router_score_function) != "sigmoid":
        raise ValueError("model.moe_router_enable_expert_bias=true needs "
                         "model.moe_router_score_function=sigmoid (Megatron supports no other)")
    if _str(cfg.train.recompute) == "full" and _str(m.arch) == "hybrid":
        stack = hybrid_classes()[1]
        if not hasattr(stack, "_checkpointed_forward"):
            raise ValueError(
                f"train.recompute=full: Megatron-Core's hybrid stack ({stack.__name__}) in this "
                "version does not recompute whole layers; use train.recompute=selective or none")


def transformer_config(cfg: Any) -> Any:
    """Megatron TransformerConfig from `cfg.model` and `cfg.parallel`."""
    from megatron.core.transformer.transformer_config import TransformerConfig

    m, p = cfg.model, cfg.parallel
    _check_limits(cfg)
    dtype = torch.float32 if cpu_compat.on_cpu() else torch.bfloat16
    mamba = {"mamba_head_dim": m.mamba_head_dim, "mamba_state_dim": m.mamba_state_dim,
             "mamba_num_groups": m.mamba_num_groups, "mamba_num_heads": m.mamba_num_heads}
    return TransformerConfig(
        num_layers=m.num_layers,
        hidden_size=m.hidden_size,
        num_attention_heads=m.num_attention_heads,
        num_query_groups=m.num_query_groups,
        kv_channels=m.kv_channels,
        ffn_hidden_size=m.ffn_hidden_size,
        normalization=_str(m.normalization),
        layernorm_epsilon=m.layernorm_epsilon,
        add_bias_linear=m.add_bias_linear,
        init_method_std=m.init_method_std,
        hidden_dropout=m.hidden_dropout,
        attention_dropout=m.attention_dropout,
        tensor_model_parallel_size=p.tensor_model_parallel_size,
        pipeline_model_parallel_size=p.pipeline_model_parallel_size,
        context_parallel_size=p.context_parallel_size,
        expert_model_parallel_size=p.expert_model_parallel_size,
        sequence_parallel=p.sequence_parallel and p.tensor_model_parallel_size > 1,
        use_cpu_initialization=cpu_compat.on_cpu(),
        params_dtype=dtype,
        pipeline_dtype=dtype,
        bf16=dtype == torch.bfloat16,
        **_activation_kwargs(_str(m.activation)),
        **_moe_kwargs(m, grouped_gemm=use_te_spec(cfg)),
        **(mamba if _str(m.arch) == "hybrid" else {}),
        **_recompute_kwargs(_str(cfg.train.recompute)),
        **_no_cuda_graph_scope(TransformerConfig),
    )


def _no_cuda_graph_scope(config_class: Any) -> Dict[str, Any]:
    """`cuda_graph_scope=[]` (the whole layer; we capture no graphs): Megatron's own default "full" warns."""
    return {"cuda_graph_scope": []} if "cuda_graph_scope" in config_class.__dataclass_fields__ else {}


# ---- GPT -----------------------------------------------------------------------------------------


def gpt_layer_spec(cfg: Any) -> Any:
    """The TE layer spec where Transformer Engine imports, else Megatron's local spec."""
    from megatron.core.models.gpt import gpt_layer_specs as specs

    kwargs = {"num_experts": cfg.model.num_moe_experts or None,
              "moe_grouped_gemm": use_te_spec(cfg)}
    if use_te_spec(cfg):
        return specs.get_gpt_layer_with_transformer_engine_spec(**kwargs)
    return segment_aware(specs.get_gpt_layer_local_spec(normalization=_str(cfg.model.normalization), **kwargs))


def segment_aware(layer_spec: Any) -> Any:
    """A local layer spec whose core attention takes packed_seq_params (packed SFT/DPO batches pass
    them to every layer; the Mamba mixer needs them, attention keeps samples apart by its mask)."""
    from nemotron.runtime.model.packed import SegmentAwareDotProductAttention

    attention = layer_spec.submodules.self_attention
    core = dataclasses.replace(attention.submodules, core_attention=SegmentAwareDotProductAttention)
    submodules = dataclasses.replace(layer_spec.submodules, self_attention=dataclasses.replace(attention, submodules=core))
    return dataclasses.replace(layer_spec, submodules=submodules)


def _language_model_kwargs(cfg: Any, vocab_size: int, pre: bool, post: bool) -> dict:
    """Arguments GPTModel and the hybrid model share."""
    m = cfg.model
    return dict(
        vocab_size=vocab_size,
        max_sequence_length=m.seq_length,
        pre_process=pre,
        post_process=post,
        share_embeddings_and_output_weights=m.share_embeddings_and_output_weights,
        position_embedding_type=_str(m.position_embedding_type),
        rotary_base=m.rotary_base,
    )


def _build_gpt(cfg: Any, config: Any, vocab_size: int, pre: bool, post: bool) -> Any:
    from megatron.core.models.gpt import GPTModel

    return GPTModel(config=config, transformer_layer_spec=gpt_layer_spec(cfg),
                    **_language_model_kwargs(cfg, vocab_size, pre, post))


# ---- hybrid (Mamba / attention / MLP / MoE) ------------------------------------------------------


def mamba_mixer_class(cfg: Any = None) -> type:
    """The Mamba mixer for `M` layers: upstream MambaMixer where the stack has mamba_ssm (and the run
    is not packed samples on the local spec: nemotron.common.stack.mamba_mixer), else TorchMamba2Mixer."""
    if cfg is not None and stacks.mamba_mixer(cfg, runtime_stack(cfg)) == "mamba_ssm":
        from megatron.core.ssm.mamba_mixer import MambaMixer

        return MambaMixer
    try:
        from nemotron.runtime.model.mamba2 import TorchMamba2Mixer
    except ImportError as err:
        raise RuntimeError(
            "model.hybrid_layer_pattern has M (Mamba) layers but neither mamba_ssm nor "
            f"nemotron.runtime.model.mamba2 (the pure-PyTorch mixer) is available: {err}"
        ) from err
    return TorchMamba2Mixer


def hybrid_classes() -> Tuple[type, type, type]:
    """(model class, stack class, stack submodules class) under 0.19 or 0.16 names."""
    try:
        from megatron.core.models.hybrid.hybrid_block import HybridStack, HybridStackSubmodules
        from megatron.core.models.hybrid.hybrid_model import HybridModel

        return HybridModel, HybridStack, HybridStackSubmodules
    except ImportError:
        from megatron.core.models.mamba import MambaModel
        from megatron.core.ssm.mamba_block import MambaStack, MambaStackSubmodules

        return MambaModel, MambaStack, MambaStackSubmodules


def _local_mamba_layer(cfg: Any, norm: type, bda: Any) -> Any:
    from megatron.core.ssm.mamba_layer import MambaLayer, MambaLayerSubmodules
    from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear
    from megatron.core.transformer.spec_utils import ModuleSpec

    mixer = mamba_mixer_class(cfg)
    submodules = importlib.import_module(mixer.__module__).MambaMixerSubmodules
    return ModuleSpec(module=MambaLayer, submodules=MambaLayerSubmodules(
        norm=norm,
        mixer=ModuleSpec(module=mixer, submodules=submodules(
            in_proj=ColumnParallelLinear, out_proj=RowParallelLinear)),
        mamba_bda=bda,
        sharded_state_dict_keys_map={"norm.": "mixer.in_proj.layer_norm_"},
    ))


def local_hybrid_stack_spec(cfg: Any) -> Any:
    """A hybrid stack spec of Megatron-Core modules only (no TE), for CPU or a bare venv."""
    from megatron.core.fusions.fused_bias_dropout import get_bias_dropout_add as bda
    from megatron.core.models.gpt import gpt_layer_specs as specs
    from megatron.core.models.gpt.moe_module_specs import get_moe_module_spec
    from megatron.core.ssm.mlp_layer import MLPLayer
    from megatron.core.transformer.spec_utils import ModuleSpec
    from megatron.core.transformer.torch_norm import WrappedTorchNorm
    from megatron.core.transformer.transformer_layer import (
        MoETransformerLayer, TransformerLayer, TransformerLayerSubmodules)

    _, stack, stack_submodules = hybrid_classes()
    dense = segment_aware(specs.get_gpt_layer_local_spec(normalization=_str(cfg.model.normalization))).submodules
    # Key maps: checkpoints match the TE spec, whose linear layers hold the fused pre-norms.
    attention = TransformerLayerSubmodules(
        input_layernorm=WrappedTorchNorm, self_attention=dense.self_attention, self_attn_bda=bda,
        sharded_state_dict_keys_map={"input_layernorm.": "self_attention.linear_qkv.layer_norm_"})
    mlp = TransformerLayerSubmodules(
        pre_mlp_layernorm=WrappedTorchNorm, mlp=dense.mlp, mlp_bda=bda,
        sharded_state_dict_keys_map={"pre_mlp_layernorm.": "mlp.linear_fc1.layer_norm_"})
    layers = {"attention_layer": ModuleSpec(module=TransformerLayer, submodules=attention),
              "mlp_layer": ModuleSpec(module=MLPLayer, submodules=mlp)}
    pattern = hybrid_pattern(cfg.model)
    if "E" in pattern:
        moe = get_moe_module_spec(use_te=False, num_experts=cfg.model.num_moe_experts,
                                  moe_grouped_gemm=False)
        layers["moe_layer"] = ModuleSpec(module=MoETransformerLayer, submodules=(
            TransformerLayerSubmodules(pre_mlp_layernorm=WrappedTorchNorm, mlp=moe, mlp_bda=bda)))
    if "M" in pattern:
        layers["mamba_layer"] = _local_mamba_layer(cfg, WrappedTorchNorm, bda)
    return ModuleSpec(module=stack, submodules=stack_submodules(**layers))


@functools.lru_cache(maxsize=None)
def _te_hybrid_stack_spec() -> Optional[Any]:
    """Upstream's TE hybrid stack spec (0.19 name first); None, with one warning line, if neither imports."""
    errors = []
    for module, name in (("megatron.core.models.hybrid.hybrid_layer_specs", "hybrid_stack_spec"),
                         ("megatron.core.models.mamba.mamba_layer_specs", "mamba_stack_spec")):
        try:
            return getattr(importlib.import_module(module), name)
        except Exception as err:  # noqa: BLE001 - ImportError, or TE failing to load its kernels
            errors.append(f"{module}: {type(err).__name__}: {err}")
    print(f"warning: Megatron-Core's TE hybrid stack spec does not import ({'; '.join(errors)}); this run "
          "builds the local hybrid spec (slower)", file=sys.stderr, flush=True)
    return None


def use_te_spec(cfg: Any) -> bool:
    """Whether the model uses Transformer Engine layer specs (which also means grouped-GEMM MoE):
    `nemotron.common.stack.layer_spec` on the stack this process imports (stack_check.runtime_stack);
    a hybrid model also needs upstream's TE stack spec to import."""
    if stacks.layer_spec(cfg, runtime_stack(cfg)) != stacks.TE:
        return False
    return _str(cfg.model.arch) != "hybrid" or _te_hybrid_stack_spec() is not None


def hybrid_stack_spec(cfg: Any) -> Any:
    """Upstream's TE stack spec when `use_te_spec(cfg)`, else the local one."""
    if use_te_spec(cfg):
        return _te_hybrid_stack_spec()
    return local_hybrid_stack_spec(cfg)


def _build_hybrid(cfg: Any, config: Any, vocab_size: int, pre: bool, post: bool) -> Any:
    m = cfg.model
    model_cls = hybrid_classes()[0]
    params = inspect.signature(model_cls.__init__).parameters
    spec_key = "hybrid_stack_spec" if "hybrid_stack_spec" in params else "mamba_stack_spec"
    pattern_key = ("hybrid_layer_pattern" if "hybrid_layer_pattern" in params
                   else "hybrid_override_pattern")  # 0.19 name, else 0.16
    return model_cls(config=config, **_language_model_kwargs(cfg, vocab_size, pre, post),
                     **{spec_key: hybrid_stack_spec(cfg), pattern_key: hybrid_pattern(m)})


# ---- entry point ---------------------------------------------------------------------------------


def build_unwrapped_model(cfg: Any, config: Any, tokenizer_vocab: int) -> Any:
    """This pipeline stage's GPTModel or hybrid model, unwrapped, on the current device."""
    from megatron.core import parallel_state

    tp = cfg.parallel.tensor_model_parallel_size
    vocab_size = padded_vocab_size(cfg.model, tokenizer_vocab, tp)
    pre, post = parallel_state.is_pipeline_first_stage(), parallel_state.is_pipeline_last_stage()
    build = _build_hybrid if _str(cfg.model.arch) == "hybrid" else _build_gpt
    with cpu_compat.cuda_as_cpu():
        return build(cfg, config, vocab_size, pre, post)


def build_model(cfg: Any, tokenizer_vocab_size: int) -> Tuple[Any, Any]:
    """(model, TransformerConfig) for this pipeline stage, on this rank's device and dtype."""
    cpu_compat.install()
    config = transformer_config(cfg)
    forget_moe_layer_losses()
    model = build_unwrapped_model(cfg, config, tokenizer_vocab_size)
    if not cpu_compat.on_cpu():
        from megatron.core.transformer.module import Float16Module

        model = Float16Module(config, model.cuda(torch.cuda.current_device()))
    return model, config


def forget_moe_layer_losses() -> None:
    """Empty Megatron's process-global MoE aux-loss tracker: it sizes its per-layer tensors by the first
    MoE model that logs into it (seq_aux_loss, aux_loss), so a later model with more layers in the same
    process (tests, tools) would index past them."""
    from megatron.core.transformer.moe import moe_utils

    moe_utils.get_moe_layer_wise_logging_tracker().clear()
