"""Compose and validate every stage of a pipeline before anything starts (the code nemotron.train uses).

Each stage is composed twice with Hydra's compose API (nemotron.config.compose.compose_run): first
with a stand-in stage directory, to hash its resolved config (without `tracker` and `dry_run`,
which change nothing it produces), then with its real directory
`<paths.output_root>/pipelines/<pipeline>/<stage>-<hash>`. A consumer's config holds its producers'
paths, which hold their hashes, so a change upstream gives every later stage a new directory too.
The second config goes through the same rules as `python -m nemotron.train` (batch fit, validate);
a problem naming a path an earlier stage will produce is left for when the stage starts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence

from omegaconf import DictConfig, OmegaConf

from nemotron.config.schema_pipeline import PipelineConfig, StageConfig
from nemotron.pipe.spec import STAGE_DIR, Graph, PipelineError, substitute

STAND_IN = "/__nemotron_stage_dir__"
"""The stage directory while hashing (the real one depends on the hash)."""
UNHASHED = ("tracker", "dry_run", "run_dir")


@dataclass
class StagePlan:
    """One stage, composed and checked: where it runs, with what, reading and writing what."""

    stage: StageConfig
    overrides: List[str]
    """Everything after `+recipe=<recipe>` on its `python -m nemotron.train` line (placeholders filled)."""
    stage_dir: Path
    config_hash: str
    cfg: DictConfig = field(repr=False)
    """Its composed config (run_dir = stage_dir), validated."""
    inputs: Dict[str, str]
    """Consumed artifact -> path."""
    outputs: Dict[str, Dict[str, str]]
    """Produced artifact -> {kind, path}."""
    upstream: List[str]
    """Stages it waits for."""
    deferred: List[str] = field(default_factory=list)
    """Rule messages about its producers' outputs, checked again when it starts."""

    name = property(lambda self: self.stage.name)

    def train_args(self) -> List[str]:
        """The arguments of its `python -m nemotron.train` run."""
        return [f"+recipe={self.stage.recipe}", *self.overrides, f"hydra.run.dir={self.stage_dir}"]


def split_overrides(args: Sequence[str], stages: Sequence[str]) -> tuple:
    """(overrides for every stage, {stage: its own overrides}): `pretrain.train.steps=3` is pretrain's."""
    common: List[str] = []
    own: Dict[str, List[str]] = {s: [] for s in stages}
    for arg in args:
        head, _, rest = arg.lstrip("+~").partition(".")
        if head in own and rest:
            prefix = arg[: len(arg) - len(arg.lstrip("+~"))]
            own[head].append(prefix + rest)
        else:
            common.append(arg)
    return common, own


def config_hash(cfg: DictConfig) -> str:
    """sha256 of the resolved config without UNHASHED keys (hex, first 10 digits)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in UNHASHED:
        container.pop(key, None)
    text = json.dumps(container, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def compose_stage(stage: StageConfig, overrides: List[str], run_dir: str) -> DictConfig:
    """The stage's config; bad input (unknown key, bad value) as a PipelineError naming the stage."""
    from nemotron.cli.errors import explain
    from nemotron.config.compose import compose_run

    try:
        return compose_run([f"+recipe={stage.recipe}", *overrides], run_dir=run_dir)
    except Exception as exc:  # noqa: BLE001 - Hydra/OmegaConf errors about the user's overrides
        message = explain(exc)
        if message is None:
            raise
        raise PipelineError(f"stage {stage.name}: {message}") from None


def external_path(stage: StageConfig, artifact: str, cfg: DictConfig) -> str:
    """The registry path of an artifact no stage produces (it must exist already)."""
    from nemotron.tracking.registry import ArtifactNotFound, Registry, registry_path

    try:
        return str(Registry(registry_path(cfg)).get(artifact)["path"])
    except ArtifactNotFound as err:
        raise PipelineError(f"stage {stage.name}: consumes {artifact}: no stage produces it and {err}") from None


def plan_stage(
    pipe: PipelineConfig,
    stage: StageConfig,
    graph: Graph,
    done: Dict[str, StagePlan],
    common: List[str],
    own: List[str],
) -> StagePlan:
    """Compose `stage` (its producers already planned in `done`), hash it, compose it again and validate it."""
    inputs = {a: done[graph.producer[a]].outputs[a]["path"] for a in stage.consumes if a in graph.producer}

    def overrides(stage_dir: str) -> List[str]:
        return [substitute(o, {**inputs, STAGE_DIR: stage_dir}) for o in [*stage.overrides, *common, *own]]

    inputs.update({a: STAND_IN for a in graph.external(stage)})  # looked up in the registry it names
    first = compose_stage(stage, overrides(STAND_IN), STAND_IN)
    for artifact in graph.external(stage):
        inputs[artifact] = external_path(stage, artifact, first)
    first = compose_stage(stage, overrides(STAND_IN), STAND_IN) if graph.external(stage) else first
    digest = config_hash(first)
    stage_dir = (Path(str(first.paths.output_root)) / "pipelines" / pipe.name / f"{stage.name}-{digest}").absolute()
    final = overrides(str(stage_dir))
    cfg = compose_stage(stage, final, str(stage_dir))
    outputs = {
        a: {"kind": spec.kind, "path": substitute(spec.path, {STAGE_DIR: str(stage_dir)})}
        for a, spec in stage.produces.items()
    }
    plan = StagePlan(
        stage=stage,
        overrides=final,
        stage_dir=stage_dir,
        config_hash=digest,
        cfg=cfg,
        inputs=inputs,
        outputs=outputs,
        upstream=graph.upstream[stage.name],
    )
    plan.deferred = check_stage(plan, [p for a, p in inputs.items() if a in graph.producer])
    return plan


def check_stage(plan: StagePlan, pending: List[str]) -> List[str]:
    """Run nemotron.train's checks on the stage; problems about `pending` paths are returned, the rest raised."""
    from nemotron.config.batch_fit import fit_batch_to_ranks
    from nemotron.config.validate import problems

    fit_batch_to_ranks(plan.cfg)
    found = problems(plan.cfg)
    later = [line for line in found if any(path in line for path in pending)]
    now = [line for line in found if line not in later]
    if now:
        raise PipelineError(f"stage {plan.name}: {now[0]}" + (f" (and {len(now) - 1} more)" if len(now) > 1 else ""))
    return later


def plan_all(pipe: PipelineConfig, graph: Graph, args: Sequence[str]) -> List[StagePlan]:
    """Every stage planned and validated, in pipeline order."""
    common, own = split_overrides(args, [s.name for s in pipe.stages])
    done: Dict[str, StagePlan] = {}
    for stage in pipe.stages:
        done[stage.name] = plan_stage(pipe, stage, graph, done, common, own[stage.name])
    return list(done.values())


def resolved(plan: StagePlan) -> Dict[str, Any]:
    """The stage's resolved config as plain data."""
    return OmegaConf.to_container(plan.cfg, resolve=True)
