"""The model state a LoRA run's checkpoints hold: what the checkpoint store asks of the model.

A LoRA model carries `nemotron_lora` (`RECORD`, set by `nemotron.runtime.peft.adapters.attach`): its
base checkpoint's path and content hash, the adapter settings and the wrapped layers. The store saves
and loads only the trainable tensors (`model_sharded_state_dict`, `load_model_state`) and writes the
record into the checkpoint's marker (`checkpoint_meta`). Imports nothing of the store (which imports it).
"""

from __future__ import annotations

from typing import Any, Dict

RECORD = "nemotron_lora"
"""The model attribute (and marker key `lora`) that says which base the adapters apply to."""


def adapted(model: Any) -> bool:
    """Whether `model` carries LoRA adapters."""
    return getattr(model, RECORD, None) is not None


def model_sharded_state_dict(model: Any) -> Dict[str, Any]:
    """The (unwrapped) model's sharded state dict; of a LoRA model, its trainable tensors only."""
    sd = model.sharded_state_dict()
    if not adapted(model):
        return sd
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    return {k: v for k, v in sd.items() if id(getattr(v, "data", None)) in trainable}


def load_model_state(model: Any, state: Dict[str, Any]) -> None:
    """Load `state` into the (unwrapped) model; a LoRA model's holds its adapters only."""
    model.load_state_dict(state, strict=not adapted(model))


def checkpoint_meta(model: Any) -> Dict[str, Any]:
    """What a save adds to its marker: the LoRA record (`lora`), when the model has one."""
    from megatron.core.utils import unwrap_model

    record = getattr(unwrap_model(model), RECORD, None)
    return {"lora": record} if record is not None else {}
