"""The `peft` config group: parameter-efficient fine-tuning (`peft=none`, the default, or `peft=lora`).

Read by the runtime's LoRA module (nemotron/runtime/peft/lora.py) for the SFT and DPO recipes; the
rules below refuse what compose can already tell is wrong (no torch or megatron imported here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

from nemotron.common.peft_targets import TARGETS
from nemotron.config.ranges import AT_LEAST_1, FRACTION, POSITIVE, ranged

PEFT_STAGES = ("/sft", "/dpo")
"""Recipes (by name suffix) that train adapters."""


@dataclass
class PeftConfig:
    """Parameter-efficient fine-tuning (group `peft`)."""

    method: str = "none"
    """`none` (every weight trains) or `lora` (low-rank adapters on a frozen base)."""
    rank: int = ranged(8, AT_LEAST_1)
    """LoRA rank r: adapters are A (r x in) and B (out x r); at most the narrowest targeted layer."""
    alpha: float = ranged(16.0, POSITIVE)
    """LoRA alpha: the adapter's output is scaled by alpha / rank."""
    dropout: float = ranged(0.0, FRACTION)
    """Dropout on the adapter's input (0 to 1)."""
    target_modules: List[str] = field(default_factory=lambda: list(TARGETS))
    """Layer names to adapt (of TARGETS); a name the model lacks (in_proj on gpt) is skipped if
    another name matches."""


def _lora(cfg: Any) -> bool:
    peft = cfg.get("peft") if hasattr(cfg, "get") else None
    return peft is not None and peft.method == "lora"


def peft_method_known(cfg: Any) -> Optional[str]:
    peft = cfg.get("peft") if hasattr(cfg, "get") else None
    if peft is not None and peft.method not in ("none", "lora"):
        return f"peft.method={peft.method!r} is not one we have; choose none or lora (peft=<option>)"
    return None


def lora_on_fine_tuning_only(cfg: Any) -> Optional[str]:
    name = str(cfg.recipe.name)
    if _lora(cfg) and not name.endswith(PEFT_STAGES):
        return f"peft=lora with +recipe={name}: adapters train in SFT and DPO recipes only; use peft=none"
    return None


def lora_targets_known(cfg: Any) -> Optional[str]:
    if not _lora(cfg):
        return None
    unknown = [t for t in cfg.peft.target_modules if t not in TARGETS]
    if unknown or not cfg.peft.target_modules:
        return (
            f"peft.target_modules: {unknown[0] if unknown else 'empty'} is no layer name LoRA can adapt; "
            f"names: {', '.join(TARGETS)}"
        )
    return None


def lora_rank_fits(cfg: Any) -> Optional[str]:
    if _lora(cfg) and cfg.peft.rank > cfg.model.hidden_size:
        return (
            f"peft.rank={cfg.peft.rank} is above the layers' width (model.hidden_size={cfg.model.hidden_size}); "
            "use a rank of at most that"
        )
    return None


PEFT_RULES: List[Callable[[Any], Optional[str]]] = [
    peft_method_known,
    lora_on_fine_tuning_only,
    lora_targets_known,
    lora_rank_fits,
]
"""Validation rules of the `peft` group (nemotron.config.validate.RULES holds them)."""
