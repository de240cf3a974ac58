"""Attaching LoRA adapters to a run's model, tied to its base checkpoint by a content hash.

A LoRA model (`setup` calls `attach(cfg, model, found)`) carries `nemotron_lora`, a record of its base:
the pretrained checkpoint's path and a content hash of its marker and metadata (`base_hash`), the
adapter settings and the wrapped layers. The store then saves and loads only the trainable tensors
(the adapters, with their optimizer state, RNG and position; `nemotron.runtime.peft.state`), writes
the record into the checkpoint's marker, and a resumed run loads the base again and
refuses a base whose hash differs from the recorded one (`check_base`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, List, Optional

from nemotron.common.checkpoint_index import MARKER, CheckpointError, Found
from nemotron.runtime.checkpoint import store
from nemotron.runtime.peft import lora
from nemotron.runtime.peft.state import RECORD
from nemotron.runtime.stages.pretrained import pretrained_source
from nemotron.runtime.train.progress import say


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

    source = pretrained_source(cfg)
    path = None if source is None else str(Path(source.path).resolve())
    record = {"base": path, "base_hash": base_hash(path, int(cfg.train.seed))}
    if found is not None:
        check_base(found, record)
        if source is not None:
            store.load_weights(source, cfg, model, say=False)
    targets = lora.apply(cfg, model)
    peft = cfg.peft
    say(wrapped_line(targets, lora.untargeted_experts(model, list(peft.target_modules))))
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)
    record.update(rank=int(peft.rank), alpha=float(peft.alpha), targets=targets, model=model_cfg)
    setattr(model, RECORD, record)


def wrapped_line(targets: List[str], experts: int) -> str:
    """What the log says LoRA wrapped: how many layers of which names, and the routed experts it left."""
    names = sorted({t.rsplit(".", 1)[-1] for t in targets})
    line = f"peft=lora: adapters on {len(targets)} layers ({', '.join(names)})"
    return line + (f"; {experts} routed-expert layers carry none (frozen)" if experts else "")
