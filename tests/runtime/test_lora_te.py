"""LoRA on Megatron-Core's Transformer Engine layers (issue 27), through stand-ins of them.

mock: Transformer Engine cannot be installed on this CPU machine (it needs CUDA), so these tests
wrap small stand-in modules that carry the names, module path, attributes and forward signature of
Megatron-Core 0.16's TE wrappers (megatron/core/extensions/transformer_engine.py): (out, bias or None)
returned, TE's `return_layernorm_output(_gathered)` flags on the fused layernorm + linear, which then
returns (out, bias, ln_out) with `te_return_bias`, else ((out, ln_out), None). They check our wiring
against that contract, not Transformer Engine itself: LoRA on TE layers is not yet run on a GPU.
"""

from __future__ import annotations

import pytest
import runtime_support
import torch
from omegaconf import OmegaConf

from nemotron.runtime.peft import lora, te_compat

megatron_world = runtime_support.megatron_world
TE_MODULE = "megatron.core.extensions.transformer_engine"


class TELinear(torch.nn.Module):
    """Stand-in of Megatron-Core's TELinear (TE's Linear): weight (out, in) at TP=1, returns (out, bias)."""

    def __init__(self, in_features: int, out_features: int, te_return_bias: bool = False) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(out_features, in_features) / in_features**0.5)
        self.bias = torch.nn.Parameter(torch.randn(out_features) * 0.1)
        self.te_return_bias = te_return_bias

    def forward(self, x):
        out = torch.nn.functional.linear(x, self.weight, None if self.te_return_bias else self.bias)
        return (out, self.bias) if self.te_return_bias else (out, None)


class TEColumnParallelLinear(TELinear):
    pass


class TERowParallelLinear(TELinear):
    pass


class TEGroupedLinear(TELinear):
    pass


class TELayerNormColumnParallelLinear(torch.nn.Module):
    """Stand-in of TE's LayerNormLinear as Megatron-Core wraps it: norm then linear in one module."""

    def __init__(self, in_features: int, out_features: int, te_return_bias: bool = False) -> None:
        super().__init__()
        self.layer_norm_weight = torch.nn.Parameter(1 + torch.randn(in_features) * 0.2)
        self.layer_norm_bias = torch.nn.Parameter(torch.randn(in_features) * 0.2)
        self.weight = torch.nn.Parameter(torch.randn(out_features, in_features) / in_features**0.5)
        self.bias = torch.nn.Parameter(torch.randn(out_features) * 0.1)
        self.te_return_bias = te_return_bias
        self.return_layernorm_output = False
        self.return_layernorm_output_gathered = False

    def norm(self, x):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], self.layer_norm_weight, self.layer_norm_bias)

    def forward(self, x):
        ln = self.norm(x)
        out = torch.nn.functional.linear(ln, self.weight, None if self.te_return_bias else self.bias)
        if self.te_return_bias:  # Megatron-Core passes TE's tuple through
            return (out, self.bias, ln) if self.return_layernorm_output else (out, self.bias)
        return ((out, ln) if self.return_layernorm_output else out), None


for _cls in (TELinear, TEColumnParallelLinear, TERowParallelLinear, TEGroupedLinear, TELayerNormColumnParallelLinear):
    _cls.__module__ = TE_MODULE


class Block(torch.nn.Module):
    """A layer as the TE spec builds it: fused norm + qkv, proj, fused norm + fc1, fc2."""

    def __init__(self, hidden: int, te_return_bias: bool) -> None:
        super().__init__()
        self.self_attention = torch.nn.Module()
        self.self_attention.linear_qkv = TELayerNormColumnParallelLinear(hidden, 3 * hidden, te_return_bias)
        self.self_attention.linear_proj = TERowParallelLinear(3 * hidden, hidden, te_return_bias)
        self.mlp = torch.nn.Module()
        self.mlp.linear_fc1 = TEColumnParallelLinear(hidden, 2 * hidden, te_return_bias)
        self.mlp.linear_fc2 = TERowParallelLinear(2 * hidden, hidden, te_return_bias)

    def forward(self, x):
        def run(layer, h):
            out, bias = layer(h)
            return out if bias is None else out + bias

        h = x + run(self.self_attention.linear_proj, run(self.self_attention.linear_qkv, x))
        return h + run(self.mlp.linear_fc2, torch.relu(run(self.mlp.linear_fc1, h)))


def _cfg(targets=("linear_qkv", "linear_proj", "linear_fc1", "linear_fc2")):
    return OmegaConf.create(
        {
            "peft": {"method": "lora", "rank": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": list(targets)},
            "parallel": {"sequence_parallel": False},
            "train": {"seed": 3},
        }
    )


def _perturb_b(model):
    """Nonzero B everywhere (as after training), so the adapters change the output."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, lora.LoRAAdapter):
                w = module.linear_out.weight
                w.copy_(torch.randn(w.shape, generator=gen) * 0.1)


@pytest.mark.parametrize("te_return_bias", [False, True])
def test_te_layers_step_zero_equals_base_adapter_reads_the_norm_and_merge_folds_into_the_linear(
    megatron_world, te_return_bias
):
    """mock: Transformer Engine cannot be installed on this CPU machine (stand-ins of its layers)."""
    torch.manual_seed(0)
    model = Block(16, te_return_bias)
    x = torch.randn(5, 2, 16)
    with torch.no_grad():
        base_out = model(x)
    fused = model.self_attention.linear_qkv
    norm_before = fused.layer_norm_weight.detach().clone()

    wrapped = lora.apply(_cfg(), model)
    assert len(wrapped) == 4 and all(isinstance(m, lora.LoRALinear) for m in (model.self_attention.linear_qkv,))
    layer = model.self_attention.linear_qkv
    assert layer.fused and fused.return_layernorm_output and fused.return_layernorm_output_gathered
    assert [p for p in model.parameters() if p.requires_grad]  # adapters train
    assert not any(p.requires_grad for p in fused.parameters())  # the base is frozen

    with torch.no_grad():
        assert torch.equal(model(x), base_out)  # B = 0: step 0 is the base

    _perturb_b(model)
    seen = []
    handle = layer.adapter.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        out, bias = layer(x)
        adapted = model(x)
    handle.remove()
    normed = fused.norm(x)
    assert torch.allclose(seen[0], normed) and not torch.allclose(seen[0], x)  # the norm's output
    a, b = layer.adapter.linear_in.weight, layer.adapter.linear_out.weight
    plain = torch.nn.functional.linear(normed, fused.weight, None if te_return_bias else fused.bias)
    torch.testing.assert_close(out, plain + (normed @ a.T @ b.T) * (8.0 / 4), rtol=0, atol=1e-5)
    assert (bias is None) != te_return_bias
    assert not torch.allclose(adapted, base_out, atol=1e-3)

    assert lora.merge(model) == 4
    assert model.self_attention.linear_qkv is fused and type(model.mlp.linear_fc2) is TERowParallelLinear
    assert not fused.return_layernorm_output and not fused.return_layernorm_output_gathered  # given back
    assert torch.equal(fused.layer_norm_weight, norm_before)  # B A went into the linear weight only
    with torch.no_grad():
        merged = model(x)
    assert (merged - adapted).abs().max().item() <= 1e-5


def test_te_layers_shard_as_the_local_ones_and_other_te_layers_are_refused(megatron_world):
    """mock: Transformer Engine cannot be installed on this CPU machine (stand-ins of its layers)."""
    model = Block(8, False)
    assert te_compat.kind(model.self_attention.linear_qkv) == "column"
    assert te_compat.kind(model.mlp.linear_fc1) == "column"
    assert te_compat.kind(model.mlp.linear_fc2) == "row"
    lora.apply(_cfg(), model)
    column, row = model.mlp.linear_fc1.adapter, model.mlp.linear_fc2.adapter
    assert column.linear_out.weight.partition_dim == 0 and column.linear_out.weight.tensor_model_parallel
    assert row.linear_in.weight.partition_dim == 1 and row.linear_in.weight.tensor_model_parallel
    assert not getattr(column.linear_in.weight, "tensor_model_parallel", False)  # A replicated

    other = Block(8, False)
    other.mlp.linear_fc2 = TEGroupedLinear(16, 8)
    with pytest.raises(lora.LoraError, match="linear_fc2 is Transformer Engine's TEGroupedLinear, which LoRA"):
        lora.apply(_cfg(), other)
