"""The `dpo` config section: Direct Preference Optimization settings (recipes gpt/dpo, nano3/dpo).

Read only by the DPO stage (nemotron/runtime/stages/dpo.py); other recipes carry it untouched. The loss
is TRL's `sigmoid` DPO (Rafailov et al. 2023) with optional conservative label smoothing (cDPO).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional

from nemotron.common.stages import is_dpo
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
    precompute_reference: bool = False
    """Compute the frozen reference's answer log-probabilities of every train and validation pair
    once, before the first step (one forward pass over the pairs, split among data-parallel ranks),
    then free the reference: the steps run the policy alone and no reference weights stay in memory
    (TRL's `precompute_ref_log_probs`). Worth it for a run of an epoch or more or where memory is
    short; the in-step reference costs the same forward per pair seen, so for a run over a fraction
    of its pairs it adds work. Recomputed on every start (deterministic), resumes stay bitwise."""


def dpo_without_pipeline(cfg: Any) -> Optional[str]:
    pp = cfg.parallel.pipeline_model_parallel_size
    if is_dpo(cfg) and pp > 1:
        return (
            f"parallel.pipeline_model_parallel_size={pp}: DPO runs without pipeline parallelism "
            "(the frozen reference would need a schedule of its own); use 1, with TP or DP"
        )
    return None


DPO_RULES: List[Callable[[Any], Optional[str]]] = [dpo_without_pipeline]
"""Validation rules of DPO runs (nemotron.config.validate.RULES holds them)."""
