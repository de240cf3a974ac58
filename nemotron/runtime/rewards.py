"""Verifiable rewards for GRPO: the shipped functions, and loading the ones `rl.rewards` names.

A reward is any importable callable `fn(prompt, response, answer, **kwargs) -> number` (bool, int
or float): `prompt` is the user's question (not the rendered template), `response` the decoded
sample up to the end of turn, `answer` the reference answer from the task. `rl.rewards` is a list of
`{_target_: "module.callable", weight: w, ...kwargs}`; the sample's reward is the weighted sum.
`load_rewards` (`nemotron.common.reward_specs`, where the compose-time check loads them too) refuses
a target that does not import or cannot take those arguments in one line, before any rollout;
`score` refuses a non-number naming the prompt's index and the value. Pure Python (no torch).
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, Sequence

from nemotron.common.reward_specs import Reward, RewardError, load_rewards

__all__ = ["Reward", "RewardError", "exact_match", "load_rewards", "numeric_answer", "regex_match", "score"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def exact_match(prompt: str, response: str, answer: str) -> float:
    """1 when the response, stripped of surrounding whitespace, equals the answer, else 0."""
    return float(response.strip() == str(answer).strip())


def regex_match(prompt: str, response: str, answer: str, pattern: str = "") -> float:
    """1 when `pattern` (re.search) matches the response; `{answer}` in it is the escaped answer."""
    return float(re.search(pattern.replace("{answer}", re.escape(str(answer))), response) is not None)


def numeric_answer(prompt: str, response: str, answer: str, tolerance: float = 1e-6) -> float:
    """1 when the first number in the response equals the numeric answer within `tolerance`."""
    found = _NUMBER.search(response)
    if found is None:
        return 0.0
    try:
        return float(abs(float(found.group()) - float(answer)) <= tolerance)
    except ValueError:
        return 0.0


def _number(value: Any, reward: Reward, index: int) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, (str, bytes)) or not math.isfinite(number):
        raise RewardError(
            f"reward {reward.name} returned {value!r} for prompt {index}: a reward must return a finite number"
        )
    return number


def score(rewards: Sequence[Reward], prompt: str, response: str, answer: Any, index: int) -> Dict[str, float]:
    """{reward name: value, ..., "total": weighted sum} for one sample of prompt `index`."""
    out: Dict[str, float] = {}
    total = 0.0
    for reward in rewards:
        value = _number(reward.fn(prompt, response, answer, **reward.kwargs), reward, index)
        out[reward.name] = value
        total += reward.weight * value
    out["total"] = total
    return out
