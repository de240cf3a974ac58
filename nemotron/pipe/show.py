"""What `dry_run=true` prints: each stage (directory, inputs, outputs, how its config differs from its
recipe's defaults, the exact command or batch script) and the dependency graph."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

from omegaconf import OmegaConf

from nemotron.pipe.plan import StagePlan, compose_stage
from nemotron.tracking.secrets import redact


def flat(node: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """(dotted key, value) of every leaf of a plain container."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from flat(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), node


def differences(plan: StagePlan) -> List[str]:
    """`key: recipe default -> this stage` for each leaf the stage's overrides change (secrets redacted)."""
    base = compose_stage(plan.stage, [], str(plan.stage_dir))
    before = dict(flat(redact(OmegaConf.to_container(base, resolve=True))))
    after = dict(flat(redact(OmegaConf.to_container(plan.cfg, resolve=True))))
    show = lambda v: repr(getattr(v, "value", v))  # noqa: E731 - enums by their value
    return [
        f"{key}: {show(before.get(key))} -> {show(value)}"
        for key, value in after.items()
        if key not in ("run_dir",) and before.get(key) != value
    ]


def graph_lines(plans: List[StagePlan], producer: Dict[str, str]) -> List[str]:
    """One line per edge, `producer --artifact--> consumer`, plus stages with no producers."""
    lines = []
    for plan in plans:
        edges = [f"  {producer[a]} --{a}--> {plan.name}" for a in plan.inputs if a in producer]
        external = [f"  (registry) --{a}--> {plan.name}" for a in plan.inputs if a not in producer]
        lines += edges + external or [f"  {plan.name} (first)"]
    return lines


def describe(pipeline: str, plans: List[StagePlan], producer: Dict[str, str], commands: Dict[str, str]) -> str:
    """The whole dry-run text; `commands` holds each stage's command line or batch script."""
    out = [f"# pipeline {pipeline}: {len(plans)} stage(s), validated; nothing started"]
    for n, plan in enumerate(plans, 1):
        out.append(f"\n== {n}. stage {plan.name} ({plan.stage.recipe}), config hash {plan.config_hash}")
        out.append(f"  dir: {plan.stage_dir}")
        for artifact, path in plan.inputs.items():
            out.append(f"  consumes {artifact}: {path} (from {producer.get(artifact, 'the registry')})")
        for artifact, spec in plan.outputs.items():
            out.append(f"  produces {artifact} [{spec['kind']}]: {spec['path']}")
        if plan.upstream:
            out.append(f"  waits for: {', '.join(plan.upstream)} (Slurm: --dependency={plan.stage.dependency.value})")
        out.append("  differs from the recipe's defaults:")
        out += [f"    {line}" for line in differences(plan)] or ["    (nothing)"]
        out += [f"  checked when it starts: {line}" for line in plan.deferred]
        out.append(commands[plan.name])
    out.append("\n== dependency graph")
    out += graph_lines(plans, producer)
    return "\n".join(out) + "\n"
