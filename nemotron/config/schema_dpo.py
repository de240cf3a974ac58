"""The `dpo` config section: Direct Preference Optimization settings (recipes gpt/dpo, nano3/dpo).

Read only by the DPO stage (nemotron/runtime/dpo.py); other recipes carry it untouched. The loss
is TRL's `sigmoid` DPO (Rafailov et al. 2023) with optional conservative label smoothing (cDPO).
"""

from __future__ import annotations

from dataclasses import dataclass

from nemotron.config.ranges import POSITIVE, Range, ranged

HALF_OPEN = Range(low=0, high=0.5, high_open=True)
"""[0, 0.5): label smoothing (0.5 would make the loss ignore which answer is preferred)."""


@dataclass
class DpoConfig:
    """Direct Preference Optimization (top-level `dpo`; used by the */dpo recipes)."""

    beta: float = ranged(0.1, POSITIVE)
    """Strength of the implicit KL penalty to the reference: rewards are beta x (log pi - log ref)
    of an answer; larger keeps the policy nearer the reference (TRL's default 0.1)."""
    label_smoothing: float = ranged(0.0, HALF_OPEN)
    """Probability that a preference label is flipped (conservative DPO); 0 is plain DPO."""
