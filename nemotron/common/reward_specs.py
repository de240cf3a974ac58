"""Loading and checking the rewards `rl.rewards` names, before any rollout (pure Python, no torch).

`rl.rewards` is a list of `{_target_: "module.callable", weight: w, ...kwargs}`; a reward is any
importable callable `fn(prompt, response, answer, **kwargs) -> number`. `load_rewards` imports each
target and binds its signature, so a typo or a wrong signature is one `RewardError` line naming the
entry. The compose-time check (`nemotron.config.rl_rules`) and the GRPO runtime
(`nemotron.runtime.rewards`, which keeps the shipped reward functions and the scoring, and exports
these names at its public address) both load them here.
"""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Sequence


class RewardError(ValueError):
    """A reward in `rl.rewards` is unusable or returned something that is not a number."""


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
