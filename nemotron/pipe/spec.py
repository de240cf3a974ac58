"""Read `conf/pipeline/<name>.yaml` against the schema and check its graph (no composing yet).

Checks, each one line naming the stage and the key (PipelineError): unknown keys or wrong types,
a stage without a name or recipe, two stages with one name, an unknown recipe, two stages producing
one artifact, a cycle, a consumed artifact no stage produces (looked up in the registry later, see
plan.py), one produced only by a later stage, a `{name}` in an override that is not consumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nemotron.common.paths import CONF_DIR
from nemotron.config.schema_pipeline import PipelineConfig, StageConfig

PIPELINE_DIR = CONF_DIR / "pipeline"
STAGE_DIR = "stage_dir"
"""The placeholder of a stage's own directory in its overrides and produced paths."""
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_][A-Za-z0-9_./@-]*)\}")


class PipelineError(ValueError):
    """Bad pipeline input: one line, naming the stage and the key; nothing was started."""


def available() -> List[str]:
    """Names of the shipped pipelines."""
    return sorted(p.stem for p in PIPELINE_DIR.glob("*.yaml"))


def load(name: str) -> PipelineConfig:
    """The pipeline `name` (a shipped name or a .yaml path), typed by the schema."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PIPELINE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise PipelineError(f"pipeline={name}: no such pipeline (available: {', '.join(available()) or 'none'})")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(PipelineConfig), OmegaConf.load(path))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "") or "?"
        raise PipelineError(f"{path}: key {key}: {str(err).splitlines()[0]}") from None
    pipe: PipelineConfig = OmegaConf.to_object(merged)
    pipe.name = pipe.name or path.stem
    return pipe


@dataclass
class Graph:
    """Who produces what, and each stage's producers (stage name -> stage names)."""

    producer: Dict[str, str]
    """artifact name -> the stage producing it."""
    upstream: Dict[str, List[str]]
    """stage name -> the stages producing what it consumes (external artifacts excluded)."""

    def external(self, stage: StageConfig) -> List[str]:
        """What `stage` consumes that no stage produces (must already be in the registry)."""
        return [a for a in stage.consumes if a not in self.producer]


def check(pipe: PipelineConfig, recipes: List[str]) -> Graph:
    """The graph of a structurally valid pipeline; PipelineError on the first problem found."""
    if not pipe.stages:
        raise PipelineError(f"pipeline {pipe.name}: stages is empty; list at least one stage")
    seen: Dict[str, int] = {}
    producer: Dict[str, str] = {}
    for i, stage in enumerate(pipe.stages):
        _check_stage(stage, i, seen, recipes)
        for artifact in stage.produces:
            if artifact in producer:
                raise PipelineError(
                    f"stage {stage.name}: produces.{artifact}: already produced by stage "
                    f"{producer[artifact]}; artifact names must be unique"
                )
            producer[artifact] = stage.name
    upstream = {s.name: sorted({producer[a] for a in s.consumes if a in producer}) for s in pipe.stages}
    cycle = find_cycle(upstream)
    if cycle:
        raise PipelineError(
            f"stage {cycle[0]}: consumes: cycle {' -> '.join(cycle)}; a stage may only "
            "consume what earlier stages produce"
        )
    for stage in pipe.stages:
        _check_order(stage, producer, seen)
        _check_placeholders(stage)
    return Graph(producer=producer, upstream=upstream)


def _check_stage(stage: StageConfig, i: int, seen: Dict[str, int], recipes: List[str]) -> None:
    if not stage.name or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", stage.name):
        raise PipelineError(f"stages[{i}].name={stage.name!r}: give each stage a name (letters, digits, _ or -)")
    if stage.name in seen:
        raise PipelineError(f"stage {stage.name}: name: stages[{seen[stage.name]}] has the same name")
    seen[stage.name] = i
    if stage.recipe not in recipes:
        from nemotron.config.keys import closest

        raise PipelineError(
            f"stage {stage.name}: recipe={stage.recipe!r}: no such recipe"
            f"{closest(stage.recipe, recipes)}; available: {', '.join(recipes)}"
        )


def _check_order(stage: StageConfig, producer: Dict[str, str], seen: Dict[str, int]) -> None:
    for artifact in stage.consumes:
        source = producer.get(artifact)
        if source == stage.name:
            raise PipelineError(f"stage {stage.name}: consumes {artifact}: it is the stage's own product")
        if source is not None and seen[source] > seen[stage.name]:
            raise PipelineError(
                f"stage {stage.name}: consumes {artifact}: produced by stage {source}, which "
                "comes later; move it before this stage"
            )


def _check_placeholders(stage: StageConfig) -> None:
    for n, override in enumerate(stage.overrides):
        for name in PLACEHOLDER.findall(override):
            if name != STAGE_DIR and name not in stage.consumes and "/" not in name and "." not in name:
                raise PipelineError(
                    f"stage {stage.name}: overrides[{n}]={override!r}: {{{name}}} is not an "
                    f"artifact it consumes (consumes: {', '.join(stage.consumes) or 'none'})"
                )
    for name, spec in stage.produces.items():
        if not spec.path.startswith("{" + STAGE_DIR + "}"):
            raise PipelineError(
                f"stage {stage.name}: produces.{name}.path={spec.path!r}: must lie in the "
                "stage's own directory ({stage_dir}/...)"
            )


def find_cycle(upstream: Dict[str, List[str]]) -> Optional[List[str]]:
    """A cycle in `upstream` as [a, b, ..., a], or None."""
    state: Dict[str, int] = {}
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for up in upstream.get(node, []):
            if state.get(up) == 1:
                return path[path.index(up) :] + [up]
            if up not in state:
                found = visit(up)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in upstream:
        if node not in state:
            found = visit(node)
            if found:
                return list(reversed(found))
    return None


def substitute(text: str, values: Dict[str, str]) -> str:
    """`text` with each `{name}` whose name is in `values` replaced (other braces kept)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
