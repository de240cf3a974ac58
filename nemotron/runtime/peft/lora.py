"""LoRA adapters on Megatron-Core's tensor-parallel linear layers (`peft=lora`), after
Megatron-Bridge's design (src/megatron/bridge/peft/lora.py, lora_layers.py).

`apply(cfg, model)` freezes every base parameter and wraps each targeted layer (`peft.target_modules`)
in a `LoRALinear`: out = base(x) + (alpha / r) * B(A(dropout(x))), with B = 0 at the start, so the
adapted model equals the base at step 0. Tensor parallel, as the base layer shards:
- ColumnParallelLinear (output split): A (r x in) replicated, B (out/TP x r) column-sharded like the
  base's output; the gradient of A's output (each rank's B sees only its rows) is all-reduced, so A's
  and the input's gradients are whole and A stays the same on every rank;
- RowParallelLinear (input split): A (r x in/TP) row-sharded like the base's input, its partial
  products all-reduced (the base reduces its own the same way), B (out x r) replicated.
A is drawn from a generator seeded by the run's seed and the layer's name, as a full matrix then
sharded, so any TP size starts from the same adapters. `merge(model)` folds B A into the base
weights and unwraps the layers.
Both layer specs: the local one's ColumnParallelLinear/RowParallelLinear and Transformer Engine's
TEColumnParallelLinear/TERowParallelLinear/TELayerNormColumnParallelLinear (recognised without
importing TE; nemotron.runtime.peft.te_compat). The fused layernorm + linear is asked for its norm's
output, which its adapter reads (as the linear does), and a merge folds B A into its linear weight
only. Experts (grouped or not) are not adapted; sequence parallelism is refused.
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from nemotron.common.peft_targets import TARGETS
from nemotron.runtime.peft import te_compat


class LoraError(ValueError):
    """A LoRA setting that does not fit the model (one line)."""


def _tp() -> Tuple[int, int]:
    from megatron.core import parallel_state

    return parallel_state.get_tensor_model_parallel_world_size(), parallel_state.get_tensor_model_parallel_rank()


def _kind(base: Any) -> Optional[str]:
    """`column` or `row`: how `base` is split over tensor-parallel ranks (None: not a TP linear)."""
    from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear

    if te_compat.is_te(base):
        return te_compat.kind(base)
    if isinstance(base, ColumnParallelLinear):
        return "column"
    if isinstance(base, RowParallelLinear):
        return "row"
    return None


def _full_a(name: str, seed: int, rank: int, in_features: int) -> torch.Tensor:
    """A as one matrix (r x in), Kaiming-uniform like torch.nn.Linear, the same on every TP layout."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    bound = 1.0 / math.sqrt(in_features)  # kaiming_uniform_(a=sqrt(5)) of an (r x in) weight
    return (torch.rand(rank, in_features, generator=gen) * 2 - 1) * bound


class LoRAAdapter(torch.nn.Module):
    """The low-rank path of one layer: `linear_in` (A) and `linear_out` (B), sharded by `kind`."""

    def __init__(self, kind: str, in_local: int, out_local: int, rank: int, alpha: float, dropout: float) -> None:
        super().__init__()
        self.kind, self.scale = kind, alpha / rank
        self.linear_in = torch.nn.Linear(in_local, rank, bias=False)
        self.linear_out = torch.nn.Linear(rank, out_local, bias=False)
        self.dropout = torch.nn.Dropout(dropout) if dropout > 0 else torch.nn.Identity()
        torch.nn.init.zeros_(self.linear_out.weight)
        self.split: Optional[Callable[[Any, tuple], Any]] = None
        """For B of a stacked layer (SwiGLU fc1, Mamba in_proj): saves it part by part as the base's
        parent saves the base weight, so any TP layout reads the same global tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The adapter's output for input `x` (this rank's part, as the base layer's)."""
        from megatron.core.tensor_parallel import (
            copy_to_tensor_model_parallel_region,
            reduce_from_tensor_model_parallel_region,
        )

        if self.kind == "column":  # A replicated: its output's gradient (partial per rank) is all-reduced
            h = copy_to_tensor_model_parallel_region(self.linear_in(self.dropout(x)))  # so A's and x's are whole
            return self.linear_out(h) * self.scale
        h = reduce_from_tensor_model_parallel_region(self.linear_in(self.dropout(x)))
        return self.linear_out(h) * self.scale

    def delta(self) -> torch.Tensor:
        """This rank's (alpha / r) B A, shaped like the base layer's local weight."""
        return (self.linear_out.weight @ self.linear_in.weight) * self.scale

    def sharded_state_dict(self, prefix: str = "", sharded_offsets: tuple = (), metadata: Any = None) -> Dict:
        """A and B as sharded tensors, split along the axis their base splits."""
        from megatron.core.transformer.utils import make_sharded_tensors_for_checkpoint

        axes = {"linear_out.weight": 0} if self.kind == "column" else {"linear_in.weight": 1}
        own = self.state_dict(prefix="", keep_vars=True)
        sd = make_sharded_tensors_for_checkpoint(own, prefix, axes, sharded_offsets)
        if self.split is not None:
            sd[f"{prefix}linear_out.weight"] = self.split(sd[f"{prefix}linear_out.weight"], sharded_offsets)
        return sd


class LoRALinear(torch.nn.Module):
    """A frozen tensor-parallel linear layer (`base`) plus its adapter (`adapter`). Of TE's fused
    layernorm + linear, the adapter reads the norm's output (`norm_flags`: the flags it had)."""

    def __init__(self, base: Any, adapter: LoRAAdapter) -> None:
        super().__init__()
        self.base, self.adapter = base, adapter
        self.fused = te_compat.fused_norm(base)
        self.norm_flags = te_compat.expose_norm_output(base) if self.fused else ()

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Tuple[torch.Tensor, Any]:
        """(base output + adapter output, the base's separate bias), as the base layer returns."""
        if self.fused:
            out, bias, normed = te_compat.split_fused_output(self.base(x, *args, **kwargs))
            return out + self.adapter(normed), bias
        out, bias = self.base(x, *args, **kwargs)
        return out + self.adapter(x), bias

    def unwrap(self) -> Any:
        """The base layer, B A folded into its (linear) weight and its own flags given back."""
        with torch.no_grad():
            self.base.weight.add_(self.adapter.delta().to(self.base.weight.dtype))
        if self.fused:
            te_compat.restore_norm_output(self.base, self.norm_flags)
        return self.base

    def sharded_state_dict(self, prefix: str = "", sharded_offsets: tuple = (), metadata: Any = None) -> Dict:
        """The base's sharded tensors under its own names (so the parent's split of a stacked weight,
        SwiGLU fc1's or Mamba in_proj's, still finds it), the adapter's under `adapter.`."""
        sd = self.base.sharded_state_dict(prefix, sharded_offsets, metadata)
        sd.update(self.adapter.sharded_state_dict(f"{prefix}adapter.", sharded_offsets, metadata))
        return sd


def _targets(model: Any, names: List[str]) -> List[Tuple[str, Any]]:
    """(qualified name, layer) of every TP linear layer whose own name is in `names` (experts excepted)."""
    found = []
    for qualified, module in model.named_modules():
        if qualified.rsplit(".", 1)[-1] not in names or ".experts." in qualified:
            continue
        if _kind(module):
            found.append((qualified, module))
        elif te_compat.is_te(module):
            raise LoraError(
                f"{qualified} is Transformer Engine's {type(module).__name__}, which LoRA does not wrap; "
                f"leave {qualified.rsplit('.', 1)[-1]} out of peft.target_modules or set model.transformer_impl=local"
            )
    return found


def _present(model: Any) -> List[str]:
    return sorted({q.rsplit(".", 1)[-1] for q, _ in _targets(model, list(TARGETS))})


def _adapter(qualified: str, base: Any, peft: Any, seed: int) -> LoRAAdapter:
    """The adapter of `base`, its A drawn full-size and sharded like the base's input."""
    kind = _kind(base)
    out_local, in_local = base.weight.shape
    size, rank = _tp()
    in_full = in_local * size if kind == "row" else in_local
    out_full = out_local * size if kind == "column" else out_local
    if peft.rank > min(in_full, out_full):
        raise LoraError(
            f"peft.rank={peft.rank} is above the width of {qualified} ({in_full} -> {out_full}); "
            f"use a rank of at most {min(in_full, out_full)}"
        )
    adapter = LoRAAdapter(kind, in_local, out_local, peft.rank, float(peft.alpha), float(peft.dropout))
    full = _full_a(qualified, seed, peft.rank, in_full)
    with torch.no_grad():
        adapter.linear_in.weight.copy_(full.chunk(size, dim=1)[rank] if kind == "row" else full)
    adapter.to(base.weight.dtype)
    if kind == "column":
        _set_tp(adapter.linear_out.weight, 0)
    else:
        _set_tp(adapter.linear_in.weight, 1)
    return adapter


def _splitter(parent: Any, attr: str) -> Optional[Callable[[Any, tuple], Any]]:
    """How the parent of layer `attr` splits its stacked weight for checkpoints (None: not stacked)."""
    if attr == "linear_fc1" and getattr(getattr(parent, "config", None), "gated_linear_unit", False):
        from megatron.core.transformer.mlp import apply_swiglu_sharded_factory

        return lambda sh, offsets: apply_swiglu_sharded_factory(sh, offsets)
    if attr == "in_proj" and hasattr(parent, "d_inner_local_tp"):
        from nemotron.runtime.model.mamba2 import split_factory

        d, h, gn = parent.d_inner_local_tp, parent.nheads_local_tp, parent.ngroups_local_tp * parent.d_state
        return lambda sh, offsets: split_factory(sh, [d, d, gn, gn, h], ["z", "x", "B", "C", "dt"])
    return None


def _set_tp(param: torch.Tensor, dim: int) -> None:
    from megatron.core.tensor_parallel import set_tensor_model_parallel_attributes

    set_tensor_model_parallel_attributes(param, True, dim, 1)


def apply(cfg: Any, model: Any) -> List[str]:
    """Freeze `model` and wrap its targeted layers in adapters (in place); the wrapped layers' names."""
    peft = cfg.peft
    if cfg.parallel.get("sequence_parallel"):
        raise LoraError("peft=lora with parallel.sequence_parallel=true is not wired yet; use false")
    targets = _targets(model, list(peft.target_modules))
    if not targets:
        raise LoraError(
            f"peft.target_modules={list(peft.target_modules)} matches no layer of this model; "
            f"its layers: {', '.join(_present(model)) or 'none'}"
        )
    for param in model.parameters():
        param.requires_grad_(False)
    for qualified, base in targets:
        parent_name, _, attr = qualified.rpartition(".")
        parent = model.get_submodule(parent_name)
        adapter = _adapter(qualified, base, peft, int(cfg.train.seed))
        adapter.split = _splitter(parent, attr)
        setattr(parent, attr, LoRALinear(base, adapter))
    return [q for q, _ in targets]


def untargeted_experts(model: Any, names: List[str]) -> int:
    """How many routed-expert layers carry a targeted name (adapters skip experts)."""
    return sum(1 for q, _ in model.named_modules() if q.rsplit(".", 1)[-1] in names and ".experts." in q)


def merge(model: Any) -> int:
    """Fold every adapter into its base weight and unwrap the layers (in place); how many merged."""
    wrapped = [(q, m) for q, m in model.named_modules() if isinstance(m, LoRALinear)]
    for qualified, layer in wrapped:
        parent_name, _, attr = qualified.rpartition(".")
        setattr(model.get_submodule(parent_name), attr, layer.unwrap())
    return len(wrapped)
