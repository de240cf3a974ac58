"""Which post-training stage a config runs, told by its recipe's name (`<family>/rl`, `<family>/dpo`).

Every config has `rl` and `dpo` sections (their defaults), so their presence says nothing. Plain
functions with no imports, for the compose layer, the tracker and lineage alike.
"""

from __future__ import annotations

from typing import Any


def is_rl(cfg: Any) -> bool:
    """Whether the selected recipe is a GRPO stage (`*/rl`)."""
    return str(cfg.recipe.name).endswith("/rl")


def is_dpo(cfg: Any) -> bool:
    """Whether the selected recipe is a DPO stage (`*/dpo`)."""
    return str(cfg.recipe.name).endswith("/dpo")
