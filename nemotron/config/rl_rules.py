"""Compose-time rules of the rl recipes (`+recipe=<family>/rl`): rewards that import and fit.

The reward functions `rl.rewards` names are imported here and their signatures checked, so a typo
in a `_target_` is one line before anything is submitted (`nemotron.common.reward_specs` loads them
as the runtime does; a user's own reward module is imported as it is).
"""

from __future__ import annotations

from typing import Any, Optional

from nemotron.common.reward_specs import RewardError, load_rewards
from nemotron.common.stages import is_rl, rl_layout_problem


def rewards_usable(cfg: Any) -> Optional[str]:
    """rl.rewards: every entry imports and takes (prompt, response, answer, **kwargs)."""
    if not is_rl(cfg):
        return None
    from omegaconf import OmegaConf

    try:
        load_rewards(OmegaConf.to_container(cfg.rl.rewards, resolve=True))
    except RewardError as err:
        return str(err)
    return None


def rl_layout(cfg: Any) -> Optional[str]:
    """GRPO samples on tensor x data parallel layouts only, and has no validation loss."""
    return rl_layout_problem(cfg) if is_rl(cfg) else None


def may_start_random(cfg: Any, value: str) -> bool:
    """An RL run whose `newest:` source does not exist yet starts from random weights instead."""
    return is_rl(cfg) and bool(cfg.rl.random_init_if_missing) and value.startswith("newest:")
