"""Verifiable rewards for GRPO: the shipped functions, and loading the ones `rl.rewards` names.

A reward is any importable callable `fn(prompt, response, answer, **kwargs) -> number` (bool, int
or float): `prompt` is the user's question (not the rendered template), `response` the decoded
sample up to the end of turn, `answer` the reference answer from the task. `rl.rewards` is a list of
`{_target_: "module.callable", weight: w, ...kwargs}`; the sample's reward is the weighted sum.
`load_rewards` refuses a target that does not import or cannot take those arguments in one line,
before any rollout; `score` refuses a non-number naming the prompt's index and the value.
Pure Python (no torch): the compose-time check imports this module too.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class RewardError(ValueError):
    """A reward in `rl.rewards` is unusable or returned something that is not a number."""


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


@dataclass(frozen=True)
class Reward:
    """One loaded `rl.rewards` entry."""

    name: str
    fn: Callable[..., Any]
    weight: float
    kwargs: Mapping[str, Any]


def _import(target: Any, key: str) -> Callable[..., Any]:
    if not isinstance(target, str) or "." not in target:
        raise RewardError(
            f"{key}._target_={target!r}: expected a dotted path module.callable, "
            "e.g. nemotron.runtime.rewards.exact_match"
        )
    module, _, name = target.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise RewardError(f"{key}._target_={target}: does not import ({type(err).__name__}: {err})") from None
    if not callable(fn):
        raise RewardError(f"{key}._target_={target}: is a {type(fn).__name__}, not a callable")
    return fn


def _load_one(spec: Mapping[str, Any], key: str) -> Reward:
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise RewardError(f"{key}={spec!r}: expected a mapping with _target_ (and optional weight)")
    kwargs = {k: v for k, v in spec.items() if k not in ("_target_", "weight")}
    target, weight = spec["_target_"], spec.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise RewardError(f"{key}.weight={weight!r}: expected a finite number")
    fn = _import(target, key)
    try:
        inspect.signature(fn).bind("prompt", "response", "answer", **kwargs)
    except TypeError as err:
        raise RewardError(
            f"{key}._target_={target}: wrong signature ({err}); a reward is called "
            "as fn(prompt, response, answer, **kwargs) with kwargs "
            f"{sorted(kwargs)}"
        ) from None
    except ValueError:  # builtins without a signature: trust them
        pass
    return Reward(str(target), fn, float(weight), dict(kwargs))


def load_rewards(specs: Optional[Sequence[Mapping[str, Any]]]) -> List[Reward]:
    """The rewards `rl.rewards` names; RewardError (one line naming the entry) if one is unusable."""
    if not specs:
        raise RewardError(
            "rl.rewards is empty: name at least one reward, e.g. [{_target_: nemotron.runtime.rewards.exact_match}]"
        )
    return [_load_one(spec, f"rl.rewards[{i}]") for i, spec in enumerate(specs)]


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
