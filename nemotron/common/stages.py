"""Which stage a config runs, told by its recipe's name (`data/...` prep, `<family>/rl`, `<family>/dpo`),
and the layouts GRPO can run.

Every config has `rl` and `dpo` sections (their defaults), so their presence says nothing. Plain
functions with no imports, for the compose layer, the memory estimate, the tracker and lineage alike.
"""

from __future__ import annotations

from typing import Any, Optional


def writes_data(cfg: Any) -> bool:
    """Data-prep recipes (`data/...`) write the blend file and read `data.sources`; others read the blend."""
    return str(cfg.recipe.name).startswith("data/")


CHAT_PREPS = ("data/prep_sft", "data/prep_dpo")
"""The recipes that render chats into packed samples beside `data.packed_file`."""


def is_chat_prep(cfg: Any) -> bool:
    """Whether the selected recipe prepares SFT or DPO data (`CHAT_PREPS`)."""
    return str(cfg.recipe.name) in CHAT_PREPS


def is_rl(cfg: Any) -> bool:
    """Whether the selected recipe is a GRPO stage (`*/rl`)."""
    return str(cfg.recipe.name).endswith("/rl")


def is_dpo(cfg: Any) -> bool:
    """Whether the selected recipe is a DPO stage (`*/dpo`)."""
    return str(cfg.recipe.name).endswith("/dpo")


def is_sft(cfg: Any) -> bool:
    """Whether the selected recipe is an SFT stage (`*/sft`)."""
    return str(cfg.recipe.name).endswith("/sft")


def is_packed(cfg: Any) -> bool:
    """Whether the stage trains on packed samples (SFT and DPO: nemotron/runtime/stages/sft.py)."""
    return is_sft(cfg) or is_dpo(cfg)


def is_eval(cfg: Any) -> bool:
    """Whether the selected recipe evaluates a checkpoint (`*/eval`)."""
    return str(cfg.recipe.name).endswith("/eval")


def rl_layout_problem(cfg: Any) -> Optional[str]:
    """One line when a GRPO config asks for what its sampler cannot run: pipeline or context
    parallelism, or a validation loss. Checked at compose (config.rl_rules) and again at setup."""
    p = cfg.parallel
    for key in ("pipeline_model_parallel_size", "context_parallel_size"):
        if p[key] > 1:
            return f"parallel.{key}={p[key]}: RL generation runs on tensor x data parallel layouts only; use 1"
    if cfg.train.eval_interval > 0:
        return (
            f"train.eval_interval={cfg.train.eval_interval}: RL has no validation loss; use 0 "
            "(rewards are logged every step)"
        )
    return None
