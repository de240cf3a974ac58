"""`-m` sweeps: every member composed and checked first, then submitted as Slurm job arrays or run here.

    python -m nemotron.train +recipe=gpt/pretrain cluster=slurm -m optim.lr=1e-4,3e-4,1e-3

Called by the Hydra launcher plugin `hydra/launcher=nemotron` (hydra_plugins/nemotron_launcher), the
default in conf/config.yaml. Nothing reaches Slurm unless every member composes, validates and passes
preflight; bad members are reported together, one line per distinct problem with the members it hits.
On a Slurm cluster the command returns once the arrays are accepted (ids, dirs and how to follow them
are printed); on `cluster=local` the members run here one after another, as Hydra's basic launcher does.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, setup_globals
from omegaconf import DictConfig

from nemotron.cli.errors import explain, require_recipe
from nemotron.cli.failures import TrainingFailed
from nemotron.cli.refused import forget_dir
from nemotron.cli.secret_files import scrub_multirun_yaml, scrubbed_log
from nemotron.common.sweep_hooks import members_checked, sweep_refused
from nemotron.config.batch_fit import fit_batch_to_ranks
from nemotron.config.dump import SectionCache
from nemotron.config.parse_cache import cached_parsing
from nemotron.config.rule_reads import CheckedBase, check_member, check_recording
from nemotron.config.validate import ConfigError
from nemotron.launchers import scheduler, slurm
from nemotron.launchers.arrays import (
    MemberJob,
    array_limit,
    describe,
    plan_arrays,
    span,
    submit_arrays,
    submitted_message,
)
from nemotron.launchers.members import Member, MemberComposer
from nemotron.launchers.parts_cache import PartsCache
from nemotron.launchers.wait import Ended, wait
from nemotron.tracking.secrets import text_scrubber

log = logging.getLogger(__name__)

SHOWN_PROBLEMS = 10
"""Most distinct problems listed when members are refused."""


@dataclass
class Rendered:
    """One member, checked: where it runs and, for Slurm, its job."""

    executor: str
    """cluster.executor of the member."""
    dry_run: bool
    """dry_run of the member."""
    run_dir: str = ""
    """The member's resolved run_dir (where its files and checkpoints go)."""
    job: Optional[MemberJob] = None
    """Its resolved config and job parts (Slurm members only)."""
    settings: Optional[Dict[str, Any]] = None
    """Sweep-wide settings the arrays need (the first member's values are used)."""


class SlurmRenderer:
    """Checks each member and renders its Slurm job; preflight once per distinct job shape."""

    def __init__(self, sweep_dir: Path, launcher: Dict[str, Any]) -> None:
        self.sweep_dir, self.cwd, self.launcher = sweep_dir, Path.cwd(), launcher
        self.checked: Set[tuple] = set()
        self.notes: Set[str] = set()  # batch-size notes already printed
        self.bases: List[Tuple[DictConfig, CheckedBase]] = []  # checked bases (kept alive: compared by identity)
        self.sections = SectionCache()  # each base's resolved sections, re-dumped only where a member differs
        self.parts = PartsCache(self.cwd, launcher)  # each base's job parts, made again only where they read a change
        self.settings: Optional[Dict[str, Any]] = None  # the first Slurm member's sweep_settings

    def __call__(self, cfg: DictConfig, changed: FrozenSet[str] = frozenset()) -> Rendered:
        """Check and render one member; `changed`: the keys it may differ in from the first member
        composed on the same base (members.py), so only the rules reading them run again."""
        require_recipe(cfg)
        fitted = fit_batch_to_ranks(cfg)
        changed = self._check(cfg, changed, fitted is not None)
        if fitted and fitted not in self.notes:  # after validation: a refused member shows its error alone
            self.notes.add(fitted)
            print(fitted, file=sys.stderr)
        executor = getattr(cfg.cluster.executor, "value", cfg.cluster.executor)
        if executor != "slurm":
            return Rendered(executor=executor, dry_run=bool(cfg.dry_run), run_dir=str(cfg.run_dir))
        text, secrets = self.sections.config_yaml(cfg, changed)
        parts = self.parts.parts(cfg, changed, slurm.code_dir_for(cfg, self.sweep_dir), secrets)
        if parts.key() not in self.checked:
            slurm.preflight(cfg, self.launcher)
            self.checked.add(parts.key())
        job = MemberJob(
            num=-1,
            overrides=[],
            run_dir=Path(cfg.run_dir),
            parts=parts,  # num, overrides: submit()
            resolved_yaml=text,
            record=slurm.record_info(cfg, self.launcher),
        )
        if self.settings is None:  # sweep-wide: the first member's values are used (submit)
            self.settings = sweep_settings(cfg, self.launcher, self.sweep_dir)
        return Rendered(
            executor=executor, dry_run=bool(cfg.dry_run), run_dir=str(job.run_dir), job=job, settings=self.settings
        )

    def _check(self, cfg: DictConfig, changed: FrozenSet[str], fitted: bool) -> FrozenSet[str]:
        """Full validation (recording each rule's reads) on a base's first member; else only the
        rules reading a changed key (nemotron/config/rule_reads.py). The keys this member may differ in
        from its base's first member (empty for that first member)."""
        for base, checked in self.bases:
            if base is cfg:
                changed = changed | ({"train.global_batch_size"} if fitted or checked.fitted else set())
                check_member(cfg, checked, changed)
                return changed
        self.bases.append((cfg, check_recording(cfg, fitted)))
        return frozenset()


def sweep_settings(cfg: DictConfig, launcher: Dict[str, Any], sweep_dir: Path) -> Dict[str, Any]:
    """What the arrays of a sweep in `sweep_dir` need from its config (read once, from the first member)."""
    c, code_dir = cfg.cluster, slurm.code_dir_for(cfg, sweep_dir)
    return {
        "name": cfg.recipe.name,
        "cluster": c.name,
        "max_array_size": c.max_array_size,
        "parallelism": launcher.get("array_parallelism") or c.array_parallelism,
        "code_dir": code_dir,
        "uncommitted": slurm.policy(cfg),
        "code_store": slurm.code_store_for(cfg, code_dir),
        "output_root": cfg.paths.output_root,
        "wait": bool(c.wait),
        "grace_s": float(c.wait_grace_s),
    }


def compose_all(
    loader: Any, master: DictConfig, job_overrides: Sequence[Sequence[str]], first_num: int, render: SlurmRenderer
) -> List[Member]:
    """Every member composed and rendered; all problems reported together as one ConfigError."""
    composer, members = MemberComposer(loader, master), []
    problems: Dict[str, List[int]] = {}
    saved = HydraConfig.instance().cfg
    try:
        with cached_parsing():
            for i, overrides in enumerate(job_overrides):
                try:
                    members.append(composer.compose(first_num + i, overrides, render))
                except Exception as exc:  # noqa: BLE001 - bad input is collected; anything else re-raised
                    message = explain(exc)
                    if message is None:
                        raise
                    problems.setdefault(message, []).append(first_num + i)
    finally:
        HydraConfig.instance().cfg = saved
    if problems:
        raise ConfigError(refusal(problems, len(job_overrides)))
    check_distinct_run_dirs(members)
    return members


def check_distinct_run_dirs(members: List[Member]) -> None:
    """Two members writing into one run dir would resume from each other's checkpoints: refuse."""
    seen: Dict[str, List[int]] = {}
    for m in members:
        seen.setdefault(m.rendered.run_dir, []).append(m.num)
    shared = [(d, nums) for d, nums in seen.items() if len(nums) > 1]
    if shared:
        run_dir, nums = shared[0]
        raise ConfigError(
            f"sweep members {span(nums)} would share the run dir {run_dir}: give each its own "
            "(hydra.sweep.subdir must tell members apart; do not set run_dir in a sweep)"
        )


def refusal(problems: Dict[str, List[int]], total: int) -> str:
    """One line per distinct problem, naming the members it hits (nothing was submitted or run)."""
    lines = []
    for message, nums in list(problems.items())[:SHOWN_PROBLEMS]:
        which = f"all {total} sweep members" if len(nums) == total else f"sweep member(s) {span(nums)} of {total}"
        lines.append(f"{message} ({which}; nothing started)")
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"... and {len(problems) - SHOWN_PROBLEMS} more distinct problem(s)")
    return "\n".join(lines)


def launch(
    hydra_context: Any,
    task_function: Any,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    launcher: Optional[Dict[str, Any]] = None,
) -> List[JobReturn]:
    """Check every member, then submit (Slurm) or run (local) them; Hydra's JobReturns."""
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(os.path.abspath(str(config.hydra.sweep.dir)))  # jobs may start elsewhere (a container)
    scrub_multirun_yaml(sweep_dir, config)
    render = SlurmRenderer(sweep_dir, launcher or {})
    try:
        members = compose_all(hydra_context.config_loader, config, job_overrides, initial_job_idx, render)
    except ConfigError:
        sweep_refused()
        forget_dir(str(sweep_dir), str(config.paths.output_root))  # a refused sweep leaves nothing behind
        raise
    if not members[0].rendered.dry_run:
        members_checked()  # e.g. the MLflow parent run, planned by the sweep callback
    executors = {m.rendered.executor for m in members}
    if executors == {"local"}:
        return run_here(hydra_context, task_function, config, job_overrides, initial_job_idx)
    if len(executors) > 1:
        raise ConfigError(f"a sweep runs on one kind of cluster; these members mix {', '.join(sorted(executors))}")
    return submit(members, sweep_dir, config)


def run_here(
    hydra_context: Any,
    task_function: Any,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
) -> List[JobReturn]:
    """cluster=local: Hydra's basic launcher runs the (already checked) members one after another
    (the overrides it logs show no secret)."""
    from nemotron.config.hydra_compat import BASIC_LAUNCHER_LOGGER, BasicLauncher

    basic = BasicLauncher()
    basic.setup(hydra_context=hydra_context, task_function=task_function, config=config)
    with scrubbed_log(BASIC_LAUNCHER_LOGGER, config):
        return list(basic.launch(job_overrides, initial_job_idx))


def submit(members: List[Member], sweep_dir: Path, config: DictConfig) -> List[JobReturn]:
    """Group into arrays, then print them (dry run) or snapshot the code and sbatch them."""
    common = set.intersection(*(set(m.overrides) for m in members))  # the swept values name the runs
    scrub = text_scrubber()  # records and dry runs show no secret
    member_jobs = [
        replace(
            m.rendered.job,
            num=m.num,
            overrides=[scrub(o) for o in m.overrides],
            label=json.dumps({"num": m.num, "overrides": [scrub(o) for o in m.overrides if o not in common]}),
        )
        for m in members
    ]
    settings = members[0].rendered.settings
    limit = array_limit(settings["max_array_size"])
    arrays = plan_arrays(member_jobs, sweep_dir, limit, settings["parallelism"], settings["name"], settings["cluster"])
    if members[0].rendered.dry_run:
        print(describe(arrays), end="", flush=True)
        return [returned(m, config, None) for m in members]
    code = slurm.take_snapshot(settings["code_dir"], settings["uncommitted"], settings["code_store"])
    try:
        submit_arrays(arrays, code, sweep_dir)
    except scheduler.SchedulerError as err:
        raise ConfigError(str(err)) from err
    print(submitted_message(arrays, sweep_dir, settings["output_root"]), flush=True)
    ids = {job.num: task_id for a in arrays for job, task_id in zip(a.members, a.task_ids or [], strict=True)}
    if settings["wait"]:
        wait_for_members([(m.num, ids[m.num], m.run_dir) for m in members], settings["name"], settings["grace_s"])
    return [returned(m, config, ids[m.num]) for m in members]


def wait_for_members(members: List[Tuple[int, str, Path]], recipe: str, grace_s: float, poll_s: float = 2.0) -> None:
    """cluster.wait=true: one line per member as it ends; a failed (or lost) member makes the command fail."""
    where = {job_id: (num, run_dir) for num, job_id, run_dir in members}
    failed: List[Tuple[int, int]] = []

    def report(ended: Ended) -> None:
        num, run_dir = where[ended.job_id]
        detail = "" if ended.code == 0 else f", exit {ended.code}; log {run_dir / 'train.log'}"
        print(
            f"member {num} (Slurm job {ended.job_id}): {ended.state}{detail}"
            + (f" ({ended.why})" if ended.why else ""),
            flush=True,
        )
        if ended.code != 0:
            failed.append((num, ended.code))

    print(f"waiting for {len(where)} sweep member(s) (Ctrl-C stops waiting, not the jobs)", flush=True)
    wait(list(where), poll_s=poll_s, grace_s=grace_s, on_end=report)
    if failed:
        nums, code = span(sorted(num for num, _ in failed)), max(code for _, code in failed) or 1
        raise TrainingFailed(
            recipe,
            code,
            Path("train.log"),
            message=f"{len(failed)} of {len(members)} sweep "
            f"member(s) of {recipe} failed: {nums} (each member's train.log is named above)",
        )


def returned(member: Member, config: DictConfig, job_id: Optional[str]) -> JobReturn:
    """A submitted member as Hydra sees it: done here, its return value the Slurm job id."""
    return JobReturn(
        overrides=member.overrides,
        working_dir=str(member.run_dir),
        task_name=str(config.hydra.job.name),
        status=JobStatus.COMPLETED,
        _return_value=job_id,
    )
