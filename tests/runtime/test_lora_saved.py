"""What a LoRA forward keeps for the backward pass (`peft=lora`, tiny gpt, in-process): the frozen base
linear layers keep only their weight, never their input (Megatron's frozen-weight linear), so LoRA's
activations are at most full SFT's; the input a targeted layer sees is kept by its adapter alone.
bench/lora_sft.py's memory figures rest on this."""

from __future__ import annotations

import runtime_support
import torch

from nemotron.runtime.peft.lora import LoRALinear
from nemotron.runtime.stages.sft import SFTStage
from nemotron.runtime.train import loop

run_config = runtime_support.run_config  # fixtures shared by the runtime tests
tiny_data_dir = runtime_support.tiny_data_dir

ONE_STEP = ["train.steps=1", "train.log_interval=1", "train.eval_interval=0", "checkpoint.save_at_end=false"]


def _module_stack(model) -> tuple:
    """(the modules running now, innermost last; the hooks that keep it, to remove)."""
    stack: list = []

    def enter(module, _args) -> None:
        stack.append(module)

    def leave(_module, _args, _output) -> None:  # returns None: the output stays
        stack.pop()

    hooks = [m.register_forward_pre_hook(enter) for m in model.modules()]
    return stack, hooks + [m.register_forward_hook(leave) for m in model.modules()]


class SavedByModule(SFTStage):
    """SFT whose first micro-batch forward records each tensor saved for backward, with the innermost
    module running when it was saved."""

    model: object
    saved: list

    def forward_step(self, data_iterator, model):
        if hasattr(self, "saved"):
            return super().forward_step(data_iterator, model)
        self.model, self.saved = model, []
        stack, hooks = _module_stack(model)

        def pack(t: torch.Tensor) -> torch.Tensor:
            self.saved.append((stack[-1] if stack else None, t))
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = super().forward_step(data_iterator, model)
        for hook in hooks:
            hook.remove()
        return out


def _record(run_config, *overrides: str) -> tuple:
    """(the model, (module, tensor) saved in its first forward) of a one-step tiny gpt SFT run."""
    stage = SavedByModule()
    loop.run(run_config("gpt/sft", "checkpoint.pretrained=null", *ONE_STEP, *overrides), stage)
    return stage.model, stage.saved


def _ptrs(tensors) -> set:
    return {t.untyped_storage().data_ptr() for t in tensors}


def test_frozen_base_layers_keep_their_weight_and_not_their_input(run_config):
    model, saved = _record(run_config, "peft=lora", "peft.rank=4")
    wrapped = [m for m in model.modules() if isinstance(m, LoRALinear)]
    bases = {id(m.base): m for m in wrapped}
    params = _ptrs(model.parameters())
    by_base = [t for module, t in saved if id(module) in bases]
    assert wrapped and by_base  # every targeted layer ran and kept something (its weight)
    assert _ptrs(by_base) <= params  # weights only: no input, no activation
    by_adapter_in = _ptrs(t for module, t in saved if any(module is m.adapter.linear_in for m in wrapped))
    assert by_adapter_in - params  # the input the adapters' A needs for its gradient


def test_full_sft_base_layers_keep_their_input(run_config):
    """The check above can fail: trained (not frozen) linear layers keep their input too."""
    from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear

    model, saved = _record(run_config, "peft=none")
    params = _ptrs(model.parameters())
    by_linear = [t for module, t in saved if isinstance(module, (ColumnParallelLinear, RowParallelLinear))]
    assert _ptrs(by_linear) - params
