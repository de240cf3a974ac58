"""Adapter-only checkpoints of a LoRA run: what the loop's checkpoint store asks of the model.

A LoRA model (`setup` calls `attach(cfg, model, found)`) carries `nemotron_lora`, a record of its base:
the pretrained checkpoint's path and a content hash of its marker and metadata (`base_hash`), the
adapter settings and the wrapped layers. The store then saves and loads only the trainable tensors
(the adapters, with their optimizer state, RNG and position; `model_sharded_state_dict`), writes the
record into the checkpoint's marker (`checkpoint_meta`), and a resumed run loads the base again and
refuses a base whose hash differs from the recorded one (`check_base`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, Optional

from nemotron.common.checkpoint_index import MARKER, CheckpointError, Found

RECORD = "nemotron_lora"
"""The model attribute (and marker key `lora`) that says which base the adapters apply to."""


def enabled(cfg: Any) -> bool:
    """Whether the run trains LoRA adapters (`peft=lora`)."""
    peft = cfg.get("peft") if hasattr(cfg, "get") else None
    return peft is not None and peft.get("method") == "lora"


def base_hash(path: Optional[str], seed: int) -> str:
    """sha256 of a checkpoint's marker and metadata.json; for no checkpoint, the seed's random init."""
    if path is None:
        return f"random-init:seed={seed}"
    digest = hashlib.sha256()
    for name in (MARKER, "metadata.json"):
        file = Path(path) / name
        if file.is_file():
            digest.update(file.read_bytes())
    return "sha256:" + digest.hexdigest()


def check_base(found: Found, record: Dict[str, Any]) -> None:
    """Refuse resuming adapters `found` onto the base `record` names when its hash differs."""
    saved = found.meta.get("lora")
    if saved is None:
        raise CheckpointError(f"{found.path} holds no LoRA adapters (saved without peft=lora); use peft=none")
    if saved["base_hash"] != record["base_hash"]:
        raise CheckpointError(
            f"adapters {found.path} were trained on base {saved['base']} ({saved['base_hash']}), not on "
            f"{record['base']} ({record['base_hash']}); set checkpoint.pretrained to their base"
        )


def attach(cfg: Any, model: Any, found: Optional[Found]) -> None:
    """With peft=lora: (on resume) load the base weights again and check them against `found`'s
    record, then freeze the model and wrap its targeted layers; nothing otherwise."""
    if not enabled(cfg):
        return
    from omegaconf import OmegaConf

    from nemotron.runtime.checkpoint import store
    from nemotron.runtime.peft import lora
    from nemotron.runtime.stages.pretrained import pretrained_source

    source = pretrained_source(cfg)
    path = None if source is None else str(Path(source.path).resolve())
    record = {"base": path, "base_hash": base_hash(path, int(cfg.train.seed))}
    if found is not None:
        check_base(found, record)
        if source is not None:
            store.load_weights(source, cfg, model, say=False)
    targets = lora.apply(cfg, model)
    peft = cfg.peft
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)
    record.update(rank=int(peft.rank), alpha=float(peft.alpha), targets=targets, model=model_cfg)
    setattr(model, RECORD, record)


def _adapted(model: Any) -> bool:
    return getattr(model, RECORD, None) is not None


def model_sharded_state_dict(model: Any) -> Dict[str, Any]:
    """The (unwrapped) model's sharded state dict; of a LoRA model, its trainable tensors only."""
    sd = model.sharded_state_dict()
    if not _adapted(model):
        return sd
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    return {k: v for k, v in sd.items() if id(getattr(v, "data", None)) in trainable}


def load_model_state(model: Any, state: Dict[str, Any]) -> None:
    """Load `state` into the (unwrapped) model; a LoRA model's holds its adapters only."""
    model.load_state_dict(state, strict=not _adapted(model))


def checkpoint_meta(model: Any) -> Dict[str, Any]:
    """What a save adds to its marker: the LoRA record (`lora`), when the model has one."""
    from megatron.core.utils import unwrap_model

    record = getattr(unwrap_model(model), RECORD, None)
    return {"lora": record} if record is not None else {}
