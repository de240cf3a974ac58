"""Schema of a pipeline (`conf/pipeline/<name>.yaml`, read by `python -m nemotron.pipe pipeline=<name>`).

A pipeline is ordered stages; each is one `python -m nemotron.train +recipe=<recipe>` run with its
own overrides. Stages hand work on by artifact name: a stage `produces` named paths inside its own
stage directory and `consumes` names that an earlier stage produces (or that the artifact registry
already holds). In a stage's overrides `{stage_dir}` is its own directory and `{<artifact>}` the
path of a consumed artifact; nothing else in braces is touched. Checked in nemotron/pipe/plan.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, List, Optional


class Dependency(str, Enum):
    """How a Slurm stage waits for its producers (sbatch --dependency=<type>:<job ids>)."""

    afterok = "afterok"
    afterany = "afterany"
    afternotok = "afternotok"


@dataclass
class ArtifactSpec:
    """One artifact a stage produces."""

    kind: str = "checkpoint"
    """Registry kind: `data`, `sft_data`, `checkpoint` (anything the lineage should show)."""
    path: str = "{stage_dir}/checkpoints"
    """Where the stage writes it; `{stage_dir}` is the stage's directory. It must exist (and hold files)
    when the stage ends, else the stage counts as failed."""


@dataclass
class StageConfig:
    """One stage: a recipe run with overrides, what it consumes and what it produces."""

    name: str = ""
    """Stage name (`data`, `pretrain`, ...); also the prefix of its command-line overrides
    (`pretrain.train.steps=5`)."""
    recipe: str = ""
    """The recipe it runs (`+recipe=<recipe>`), e.g. `nano3/pretrain`."""
    overrides: List[str] = field(default_factory=list)
    """Overrides of that run, as on the command line of `python -m nemotron.train`."""
    consumes: List[str] = field(default_factory=list)
    """Artifact names it reads: produced by another stage, or an artifact already in the registry."""
    produces: Dict[str, ArtifactSpec] = field(default_factory=dict)
    """Artifacts it writes, by name."""
    dependency: Dependency = Dependency.afterok
    """Slurm: how it waits for the stages that produce what it consumes."""


@dataclass
class PipelineConfig:
    """A whole pipeline: its name and its stages in order."""

    name: str = ""
    """Pipeline name; its stage directories are `<paths.output_root>/pipelines/<name>/<stage>-<hash>`."""
    description: str = ""
    """One line for `--help` and the MLflow parent run."""
    stages: List[StageConfig] = field(default_factory=list)
    """The stages, in the order they run (a stage may only consume what an earlier one produces)."""
    experiment: Optional[str] = None
    """MLflow experiment of the parent run and the stages' runs; null: `pipeline/<name>`."""
