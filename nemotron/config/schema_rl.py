"""The `rl` config section: GRPO with verifiable rewards (recipes nano3/rl and gpt/rl).

One training step of an RL recipe is one rollout batch: `train.global_batch_size` prompts (over all
data-parallel ranks, `train.micro_batch_size` per micro-batch), `rl.group_size` samples of each
drawn from the policy, scored by `rl.rewards`, then `rl.updates_per_batch` optimizer steps on them.
Prompts come from the embedded synthetic task (`rl.task`) or a JSONL file (`rl.prompt_file`). Ranges
are checked at compose time like every numeric field (G < 2, temperature < 0, kl_beta <= 0 refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from nemotron.config.ranges import AT_LEAST_1, NON_NEGATIVE, POSITIVE, Range, ranged

AT_LEAST_2 = Range(low=2)
"""Group size: advantages are normalized within a group, so one sample has nothing to compare to."""
TOP_P = Range(low=0, high=1, low_open=True)
"""(0, 1]: nucleus sampling keeps the smallest set of tokens whose probability reaches top_p."""
CLIP = Range(low=0, high=1, low_open=True, high_open=True)
"""(0, 1): PPO clip range epsilon."""


def _default_rewards() -> List[Dict[str, Any]]:
    return [
        {"_target_": "nemotron.runtime.rewards.numeric_answer", "weight": 1.0},
        {"_target_": "nemotron.runtime.rewards.regex_match", "pattern": r"^\s*-?\d", "weight": 0.5},
    ]


@dataclass
class RLConfig:
    """GRPO settings (top-level `rl`; read by the rl recipes only)."""

    task: str = "arithmetic"
    """Embedded synthetic task when rl.prompt_file is null: `arithmetic` (a + b, exact integer
    answer) or `reverse` (reverse a short letter string)."""
    num_prompts: int = ranged(2000, AT_LEAST_1)
    """Prompts the synthetic task generates (seeded by data.seed)."""
    max_operand: int = ranged(9, NON_NEGATIVE)
    """arithmetic: operands are drawn from 0..max_operand; reverse: strings of 3..max_operand+3 letters."""
    prompt_file: Optional[str] = None
    """JSONL of {"prompt": ..., "answer": ...} (or {"messages": [...], "answer": ...}) lines; null:
    the synthetic task. Prompts are rendered with the SFT chat template (data.chat_template)."""
    group_size: int = ranged(8, AT_LEAST_2)
    """G: samples drawn per prompt; advantages are normalized within each group."""
    max_new_tokens: int = ranged(8, AT_LEAST_1)
    """Most tokens generated per sample (generation also stops at the end-of-turn token)."""
    temperature: float = ranged(1.0, NON_NEGATIVE)
    """Sampling temperature; 0 is greedy decoding."""
    top_p: float = ranged(1.0, TOP_P)
    """Nucleus sampling: sample from the smallest token set whose probability reaches top_p."""
    kl: bool = True
    """Add the KL term to the frozen reference model (the weights training started from)."""
    kl_beta: float = ranged(0.02, POSITIVE)
    """Weight of the KL term (k3 estimator, as in the GRPO paper); used when rl.kl is true."""
    clip_eps: float = ranged(0.2, CLIP)
    """PPO clip range: the ratio new/old policy is clipped to [1 - eps, 1 + eps]."""
    updates_per_batch: int = ranged(1, AT_LEAST_1)
    """Optimizer steps on each rollout batch (1: on-policy; more reuse the samples, clipped)."""
    scale_rewards: bool = True
    """Divide advantages by the group's reward std (GRPO); false keeps only the mean baseline
    (Dr. GRPO)."""
    rewards: List[Dict[str, Any]] = field(default_factory=_default_rewards)
    """Reward functions: each `{_target_: module.callable, weight: w, **kwargs}`, called as
    fn(prompt, response, answer, **kwargs) -> number; the reward is the weighted sum. Shipped in
    nemotron.runtime.rewards: exact_match, regex_match (pattern), numeric_answer."""
    random_init_if_missing: bool = True
    """When checkpoint.pretrained is `newest:<recipe>` and none exists yet (a fresh clone), start
    from random weights with a warning instead of refusing."""
