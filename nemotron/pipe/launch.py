"""Start a planned pipeline: print it (dry run), run it here, or submit it to Slurm."""

from __future__ import annotations

import shlex
import sys
from typing import Dict, List, Optional

from nemotron.config.schema_pipeline import PipelineConfig
from nemotron.pipe.plan import StagePlan
from nemotron.pipe.spec import Graph


def on_slurm(plans: List[StagePlan]) -> bool:
    """True when the stages' cluster option submits to Slurm."""
    executor = plans[0].cfg.cluster.executor
    return getattr(executor, "name", executor) == "slurm"


def local_command(plan: StagePlan) -> str:
    """The stage's command line, secrets scrubbed."""
    from nemotron.tracking.secrets import scrub_text

    return "  command: " + scrub_text(shlex.join([sys.executable, "-m", "nemotron.train", *plan.train_args()]))


def launch(
    pipe: PipelineConfig,
    graph: Graph,
    plans: List[StagePlan],
    dry_run: bool,
    start: Optional[str],
    only: Optional[str],
    argv: List[str],
) -> int:
    """Dry run, local run or Slurm submission of the planned stages."""
    remote = on_slurm(plans)
    if dry_run:
        from nemotron.pipe import show

        if remote:
            from nemotron.pipe import slurm

            commands = slurm.scripts(pipe, plans)
        else:
            commands = {p.name: local_command(p) for p in plans}
        print(show.describe(pipe.name, plans, graph.producer, commands), end="")
        return 0
    if remote:
        from nemotron.pipe import slurm

        return slurm.submit_all(pipe, plans, start, only, argv)
    from nemotron.pipe import local, tracking

    with tracking.parent_run(pipe, plans) as hooks:
        return local.run_all(pipe.name, plans, start, only, stage_env=hooks.stage_env, on_stage=hooks.on_stage)


def states_of(plans: List[StagePlan]) -> Dict[str, str]:
    """Each stage: done (a record for this config) or pending."""
    from nemotron.pipe import records

    return {p.name: "done" if records.finished(p) else "pending" for p in plans}
