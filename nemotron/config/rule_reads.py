"""Validate sweep members without re-running every rule: each rule's reads, recorded once per shape.

A sweep's members that differ only in values share one composed base (launchers/members.py). The
first member on a base is validated in full (`check_recording`), and while each rule runs, every
config key it reads is recorded (OmegaConf's node reads, interpolations resolved through them too:
`hydra_compat.recording_reads`). A rule is a function of what it read, so for a later member only
the rules that read a key the sweep changes run again (`check_member`): a key equal to a changed one,
or a container holding it (a rule that read `cluster.env` whole depends on `cluster.env.X`). Range
checks run only on the changed keys. The errors are the same lines a full validation gives: the
rules themselves produce them.

What a member may change against its base's first member: the keys whose value override differed from
that first member's in this or an earlier member on the base (launchers/members.py `_changed`) and
Hydra's per-member node (`MEMBER_HYDRA_KEYS`: job number, id, override
dirname, output dir), which run_dir and the sweep subdir interpolate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Set

from nemotron.config.validate import RULES, ConfigError, keys_known, problems, range_problems, values_in_range

Rule = Callable[[Any], Optional[str]]

MEMBER_HYDRA_KEYS = frozenset(
    {"hydra.job.num", "hydra.job.id", "hydra.job.override_dirname", "hydra.overrides.task", "hydra.runtime.output_dir"}
)
"""The keys of Hydra's node that change from one sweep member to the next (launchers/members.py)."""


@dataclass
class CheckedBase:
    """A base config validated in full, with the keys each rule read."""

    reads: Dict[Rule, FrozenSet[str]]
    fitted: bool = False
    """Its global batch was raised to fit the ranks (config.batch_fit): later members may differ there."""
    rerun: Dict[FrozenSet[str], List[Rule]] = field(default_factory=dict)
    """rules_to_rerun's answer per set of changed keys (a sweep's members mostly share one)."""


def check_recording(cfg: Any, fitted: bool = False) -> CheckedBase:
    """Every rule on `cfg` (raises ConfigError like `validate`), recording what each read."""
    reads: Dict[Any, FrozenSet[str]] = {}
    found = problems(cfg, RULES, reads)
    if found:
        raise ConfigError("\n".join(found))
    return CheckedBase(reads, fitted)


def touches(read: Iterable[str], changed: Iterable[str]) -> bool:
    """Whether a rule that read `read` can see a change of any key in `changed`."""
    read_set: Set[str] = set(read)
    for key in changed:
        parts = key.split(".")
        if any(".".join(parts[:n]) in read_set for n in range(1, len(parts) + 1)):
            return True
        if any(r.startswith(key + ".") for r in read_set):
            return True
    return False


def rules_to_rerun(base: CheckedBase, changed: Iterable[str]) -> List[Rule]:
    """The rules (after the key and range checks) whose reads a change of `changed` can reach."""
    keys = frozenset(changed)
    if keys not in base.rerun:
        skip = (keys_known, values_in_range)
        base.rerun[keys] = [rule for rule in RULES if rule not in skip and touches(base.reads.get(rule, ()), keys)]
    return base.rerun[keys]


def check_member(cfg: Any, base: CheckedBase, changed: Iterable[str]) -> None:
    """Validate a member of `base` that differs from it only in the values of `changed` keys."""
    keys = frozenset(changed) | MEMBER_HYDRA_KEYS
    found = range_problems(cfg, keys)
    if not found:
        found = problems(cfg, rules_to_rerun(base, keys))
    if found:
        raise ConfigError("\n".join(found))
