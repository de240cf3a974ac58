"""Submit a planned pipeline to Slurm: every unfinished stage at once, each depending on its producers.

Each stage is one plain job through the launch path `python -m nemotron.train cluster=<slurm>` uses
(nemotron.launchers.slurm: preflight, plan, code snapshot, submitit), with
`--dependency=<stage.dependency>:<producer job ids>` and `--kill-on-invalid-dep=yes`: when a producer
fails, Slurm cancels its dependents (sacct: CANCELLED, reason DependencyNeverSatisfied) and they
never run. Stages finished for the same config are not submitted; nor is anything when one stage is
refused. A last, small job runs after all of them (nemotron/pipe/finish.py: stage records, lineage,
the end states, the MLflow parent run opened here that every stage's run nests under). The
command returns at once with the job ids; `python -m nemotron.jobs list` shows the
pipeline as one unit, and running the same command again (or `python -m nemotron.jobs resubmit
<pipeline dir>`) submits what did not finish, from the first unfinished stage on.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from nemotron.config.schema_pipeline import PipelineConfig
from nemotron.pipe import records, tracking
from nemotron.pipe.plan import StagePlan
from nemotron.pipe.spec import PipelineError
from nemotron.tracking.secrets import scrub_text

PENDING_ID = "<job id of {stage}>"
"""How a dry run shows a producer's job id (known only once it is submitted)."""


def launcher_for(plan: StagePlan, ids: Dict[str, str]) -> Dict[str, Any]:
    """`hydra.launcher.additional_parameters` of the stage: its dependency on the producers' jobs."""
    waits = [ids[name] for name in plan.upstream if name in ids]
    if not waits:
        return {}
    return {
        "additional_parameters": {
            "dependency": f"{plan.stage.dependency.value}:{':'.join(waits)}",
            "kill_on_invalid_dep": "yes",
        }
    }


def slurm_plan(plan: StagePlan, ids: Dict[str, str]) -> Any:
    """The stage's SlurmPlan (preflight checked), depending on the jobs in `ids`."""
    from nemotron.config.dump import config_yaml
    from nemotron.launchers import slurm

    launcher = launcher_for(plan, ids)
    slurm.preflight(plan.cfg, launcher)
    resolved, secrets = config_yaml(plan.cfg)
    return slurm.plan_slurm(plan.cfg, launcher=launcher, resolved_yaml=resolved, secrets=secrets)


def scripts(pipe: PipelineConfig, plans: List[StagePlan]) -> Dict[str, str]:
    """What a dry run prints per stage: its submit line and batch script (producer ids shown as placeholders)."""
    ids = {p.name: PENDING_ID.format(stage=p.name) for p in plans}
    return {p.name: slurm_plan(p, ids).describe().rstrip("\n") for p in plans}


def settle(pipeline: str, plans: List[StagePlan]) -> Dict[str, Dict[str, Any]]:
    """Record stages a previous submission finished (sacct COMPLETED, outputs there); every finished record.
    A stage whose earlier job is still pending or running is refused (submitting it again would run it twice)."""
    from nemotron.launchers import scheduler

    last = records.read_json(records.pipeline_dir(plans) / records.PIPELINE_RECORD) or {}
    jobs = {s["stage"]: str(s["job_id"]) for s in last.get("stages", []) if s.get("job_id")}
    states = scheduler.known_states(list(jobs.values()))[0] if jobs else {}
    done: Dict[str, Dict[str, Any]] = {}
    for plan in plans:
        rec = records.finished(plan)
        state = states.get(jobs.get(plan.name, ""))
        if rec is None and state is not None and state.state in scheduler.ACTIVE_STATES:
            raise PipelineError(
                f"stage {plan.name}: its job {jobs[plan.name]} is still {state.state}; wait for it "
                f"or cancel it (scancel {jobs[plan.name]}) before submitting the pipeline again"
            )
        completed = state is not None and state.state == "COMPLETED"
        if rec is None and completed and not records.missing_outputs(plan.outputs):
            rec = records.record_stage(pipeline, plan, done)
        if rec is not None:
            done[plan.name] = rec
    return done


def submit_all(
    pipe: PipelineConfig, plans: List[StagePlan], start: Optional[str], only: Optional[str], argv: List[str]
) -> int:
    """Submit every stage not finished for its config (or the --from/--only selection); return 0."""
    from nemotron.pipe.local import require_inputs, selection

    forced = selection(plans, start, only)
    done = settle(pipe.name, plans)
    require_inputs(plans, forced, done)
    todo = [p for p in plans if p.name in forced] if forced else [p for p in plans if p.name not in done]
    planned = {}
    ids: Dict[str, str] = {}
    for plan in todo:  # plan every job before submitting any: a refused stage submits nothing
        planned[plan.name] = slurm_plan(plan, {n: PENDING_ID.format(stage=n) for n in plan.upstream})
    states: Dict[str, Dict[str, Any]] = {n: {"state": "done"} for n in done}
    opened = tracking.open_parent(pipe, plans) if todo else {}
    try:
        submit_stages(todo, planned, ids, states, opened)
    finally:  # sbatch refused a stage mid-way: what was submitted still gets its finishing job and record
        launch_id = uuid.uuid4().hex
        finish_id = submit_finish(pipe.name, plans, ids, opened, launch_id) if ids else None
        if opened and not ids:
            tracking.close_unsubmitted(opened, pipe.name, plans, refused=todo[0].name)
        path = records.write_pipeline(
            pipe.name,
            plans,
            states,
            argv=[scrub_text(a) for a in argv],  # resubmit reruns it; no secret values on disk
            cwd=os.getcwd(),
            cluster=str(plans[0].cfg.cluster.name),
            launch_id=launch_id,
            finish_job_id=finish_id,
            parent_run_id=opened.get("parent_run_id"),
        )
    print(submitted_message(pipe.name, plans, done, ids, path, finish_id, opened.get("parent_run_id")), flush=True)
    return 0


def submit_stages(
    todo: List[StagePlan],
    planned: Dict[str, Any],
    ids: Dict[str, str],
    states: Dict[str, Dict[str, Any]],
    opened: Dict[str, str],
) -> None:
    """Submit the stages in order, each after its producers' job ids are known (ids, states filled in)."""
    from nemotron.launchers import slurm

    with environ(tracking.stage_environ(opened.get("parent_run_id"), opened.get("experiment"))):
        for plan in todo:
            job = slurm_plan(plan, ids) if plan.upstream else planned[plan.name]
            ids[plan.name] = slurm.submit(job)
            states[plan.name] = {"state": "submitted", "job_id": ids[plan.name]}


@contextlib.contextmanager
def environ(extra: Dict[str, str]) -> Iterator[None]:
    """`extra` in this process's environment (sbatch passes it on to the jobs) while submitting."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def submit_finish(
    pipeline: str, plans: List[StagePlan], ids: Dict[str, str], opened: Dict[str, str], launch_id: str
) -> Optional[str]:
    """The finishing job (nemotron/pipe/finish.py) after every submitted stage; its id, or None (said)."""
    from nemotron.launchers import scheduler
    from nemotron.launchers.slurm import code_dir_for
    from nemotron.pipe.finish import FinishTask, submit

    stages = [{**records.facts(p), **({"job_id": ids[p.name]} if p.name in ids else {})} for p in plans]
    task = FinishTask(pipeline, str(records.pipeline_dir(plans)), launch_id, stages, opened)
    last = next(p for p in reversed(plans) if p.name in ids)
    try:
        return submit(task, last.cfg, code_dir_for(last.cfg, last.stage_dir), list(ids.values()))
    except scheduler.SchedulerError as err:
        print(
            f"nemotron.pipe: the pipeline's finishing job was refused ({err}); stage records are written "
            "at the next nemotron.pipe or resubmit",
            file=sys.stderr,
            flush=True,
        )
        return None


def submitted_message(
    pipeline: str,
    plans: List[StagePlan],
    done: Dict[str, Any],
    ids: Dict[str, str],
    path: Path,
    finish_id: Optional[str] = None,
    parent_run_id: Optional[str] = None,
) -> str:
    """Job ids per stage, dependencies, and how to follow them."""
    lines = [f"pipeline {pipeline}: submitted {len(ids)} stage(s) to Slurm"]
    for plan in plans:
        if plan.name in ids:
            waits = [f"{n} ({ids[n]})" for n in plan.upstream if n in ids]
            dep = f", after {plan.stage.dependency.value}: {', '.join(waits)}" if waits else ""
            lines.append(f"  {plan.name}: job {ids[plan.name]}{dep}  log {plan.stage_dir / 'train.log'}")
        elif plan.name in done:
            lines.append(f"  {plan.name}: finished for the same config, not submitted ({plan.stage_dir})")
    if finish_id:
        lines.append(f"  finish: job {finish_id}, after every stage: records, lineage, MLflow parent run")
    first = next(iter(ids.values()), None)
    lines += [
        f"  MLflow:  parent run {parent_run_id}, each stage's run nested under it" if parent_run_id else "",
        f"  record:  {path}",
        f"  state:   python -m nemotron.jobs list --root {shlex.quote(str(plans[0].cfg.paths.output_root))}",
        f"  follow:  python -m nemotron.jobs follow {first}" if first else "  nothing to follow",
        f"  cancel:  scancel {' '.join(ids.values())}" if ids else "",
    ]
    return "\n".join(line for line in lines if line)
