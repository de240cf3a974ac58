"""Slurm dispatch for a cluster option with `executor: slurm`: preflight, plan, submit one run, wait.

    python -m nemotron.train +recipe=gpt/pretrain cluster=slurm_test                 # submit, return
    python -m nemotron.train +recipe=gpt/pretrain cluster=slurm_test dry_run=true    # print the script
    python -m nemotron.train +recipe=gpt/pretrain cluster=slurm_test cluster.wait=true

A plain run is a launch of one member through the same path as a sweep (`arrays.py`): submitit's
Slurm executor renders the batch script and submits it; a dry run prints that same rendering, byte
for byte the `<run_dir>/job.sbatch` a submit keeps. Nothing is re-composed when the job starts: the
job reads `<run_dir>/config.yaml`, resolved at submission, and runs the code copied into
`<run_dir>/code` at submission (`cluster.snapshot`). What submitit pickles is `task.RankTask`: the
run dir and the recipe command. Secret-named variables go to a 0600 `secrets.env` the script sources,
never into the script. Like the rest of the compose/launch layer, this imports no torch, megatron or mlflow.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from nemotron.common.atomic_files import write_text_atomic
from nemotron.common.topology import ranks_per_node
from nemotron.config.validate import ConfigError
from nemotron.launchers import records, scheduler, snapshot
from nemotron.launchers.arrays import MemberJob, SweepArray, plan_plain, submit_arrays
from nemotron.launchers.script import CODE_DIR, CODE_STORE, job_parts
from nemotron.launchers.terminal import TerminalFilter
from nemotron.launchers.wait import wait as wait_for_jobs


@dataclass
class SlurmPlan:
    """One run's job: the member (config, parts) and its planned submission (executor, exact script)."""

    member: MemberJob
    """The run as a member of a launch of one."""
    job: SweepArray
    """Its submission: submitit executor and the script sbatch will receive."""
    code_dir: Optional[Path] = None
    """Where the code snapshot goes (the job runs from it); None runs the live checkout."""
    uncommitted: str = "ship"
    """What the snapshot does with uncommitted changes (cluster.uncommitted)."""
    code_store: Optional[Path] = None
    """Where snapshots of identical code are shared (`code_dir` links to one): code_store_for."""

    script = property(lambda self: self.job.script)
    run_dir = property(lambda self: self.member.run_dir)
    secrets = property(lambda self: self.member.parts.secrets)
    script_path = property(lambda self: self.job.script_path)
    log_path = property(lambda self: self.run_dir / "train.log")
    secrets_path = property(lambda self: self.run_dir / "secrets.env")
    record_path = property(lambda self: self.run_dir / records.RECORD)

    def describe(self) -> str:
        """What a dry run prints: the submit command, then the script exactly as it would be written."""
        secrets = f"; secrets {', '.join(sorted(self.secrets))} -> {self.secrets_path} (0600)" if self.secrets else ""
        code = f"; code snapshot -> {self.code_dir}" if self.code_dir else ""
        return (
            f"# would submit: sbatch --parsable {self.script_path} (log: {self.log_path}{secrets}{code}; "
            f"submitit folder {self.job.folder})\n{self.script}"
        )


def code_dir_for(cfg: Any, base: Path) -> Optional[Path]:
    """`<base>/code` when the cluster option snapshots the code, else None."""
    return base / CODE_DIR if cfg.cluster.snapshot else None


def code_store_for(cfg: Any, code_dir: Optional[Path]) -> Optional[Path]:
    """`<paths.output_root>/.code` (absolute), where the snapshots that `code` links point into live, when
    `code_dir` lies under the output root; None otherwise (a run dir set elsewhere gets its own copy)."""
    root = Path(os.path.abspath(str(cfg.paths.output_root)))
    if code_dir is None or not Path(os.path.abspath(code_dir)).is_relative_to(root):
        return None
    return root / CODE_STORE


def policy(cfg: Any) -> str:
    """cluster.uncommitted as a plain string."""
    return getattr(cfg.cluster.uncommitted, "value", cfg.cluster.uncommitted)


def record_info(cfg: Any, launcher: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The parts of a job record that come from the config."""
    partition = (launcher or {}).get("partition") or cfg.cluster.partition
    return {"recipe": cfg.recipe.name, "cluster": cfg.cluster.name, "partition": partition}


def plan_slurm(
    cfg: Any,
    cwd: Optional[Path] = None,
    launcher: Optional[Dict[str, Any]] = None,
    resolved_yaml: str = "",
    secrets: Optional[Dict[str, str]] = None,
) -> SlurmPlan:
    """The job for a validated config; the script is fixed now, files are written at submit. `resolved_yaml`
    holds references to the secrets (nemotron.config.dump.config_yaml), `secrets` their values."""
    run_dir = Path(cfg.run_dir)
    code_dir = code_dir_for(cfg, run_dir)
    parts = job_parts(cfg, cwd or Path.cwd(), code_dir, launcher, secrets)
    member = MemberJob(
        num=0,
        overrides=[],
        run_dir=run_dir,
        resolved_yaml=resolved_yaml,
        parts=parts,
        record=record_info(cfg, launcher),
    )
    return SlurmPlan(
        member=member,
        job=plan_plain(member, cfg.recipe.name, cfg.cluster.name),
        code_dir=code_dir,
        uncommitted=policy(cfg),
        code_store=code_store_for(cfg, code_dir),
    )


# ---------------------------------------------------------------- preflight


def check_container(cfg: Any) -> Optional[str]:
    c = cfg.cluster
    if c.container_image and not c.pyxis:
        return (
            f"cluster.container_image={c.container_image} needs pyxis, but cluster={c.name} has "
            "cluster.pyxis=false (set cluster.container_image=null, or cluster.pyxis=true)"
        )
    return None


def check_image_file(cfg: Any) -> Optional[str]:
    """A squash-file image (an absolute `.sqsh` path, what docker/README.md makes) must exist: pyxis would
    only fail once the job holds nodes. Not checked in a dry run (it shows the script and runs nothing)."""
    image = cfg.cluster.container_image
    if not image or cfg.dry_run or not str(image).startswith("/") or not str(image).endswith(".sqsh"):
        return None
    if Path(image).is_file():
        return None
    return (
        f"cluster.container_image={image}: no such squash file (build docker/Dockerfile and import it with enroot, "
        "docker/README.md; then export NEMOTRON_IMAGE=<file> or set cluster.container_image)"
    )


def check_partition(
    cfg: Any, parts: Dict[str, Dict[str, int]], launcher: Optional[Dict[str, Any]] = None
) -> Optional[str]:
    """The partition the job goes to exists and has enough nodes with enough GPUs."""
    key = "hydra.launcher.partition" if (launcher or {}).get("partition") else "cluster.partition"
    name, res = (launcher or {}).get("partition") or cfg.cluster.partition, cfg.resources
    known = sorted(p for p in parts if p != "*")
    nodes = parts.get(name or "*")
    where = f"{key}={name}" if name else "the default partition"
    if nodes is None:
        return f"{where}: no such partition on this Slurm cluster (sinfo knows: {', '.join(known) or 'none'})"
    if res.nodes > len(nodes):
        return f"resources.nodes={res.nodes} but {where} has {len(nodes)} nodes"
    most = max(nodes.values(), default=0)
    if res.gpus_per_node > most:
        return f"resources.gpus_per_node={res.gpus_per_node} but nodes of {where} have at most {most} GPUs"
    return None


def check_uncommitted(cfg: Any) -> Optional[str]:
    """With cluster.uncommitted=refuse, a checkout with uncommitted code changes is refused up front."""
    if not cfg.cluster.snapshot or policy(cfg) != "refuse":
        return None
    changed = snapshot.changed_files(snapshot.code_root()) or []
    if not changed:
        return None
    shown = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
    return (
        f"cluster.uncommitted=refuse: {len(changed)} uncommitted file(s) in {snapshot.code_root()}: {shown}; "
        "commit or stash them, or set cluster.uncommitted=ship"
    )


def preflight(cfg: Any, launcher: Optional[Dict[str, Any]] = None) -> None:
    """Checks before anything reaches Slurm; partition checks only when sinfo answers. One line each."""
    problems = [check_container(cfg), check_image_file(cfg), check_uncommitted(cfg)]
    parts = scheduler.partitions()
    if parts is not None:
        problems.append(check_partition(cfg, parts, launcher))
    found = [p for p in problems if p]
    if found:
        raise ConfigError("\n".join(found))


# ---------------------------------------------------------------- submit, wait


def write_files(plan: SlurmPlan) -> None:
    """The script copy (and the secrets beside it, 0600) in the run directory."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    if plan.secrets:
        records.write_secrets(plan.secrets_path, plan.secrets)
    write_text_atomic(plan.script_path, plan.script)


def take_snapshot(code_dir: Optional[Path], uncommitted: str, store: Optional[Path] = None) -> Dict[str, Any]:
    """Copy the code for the job (nothing without a code dir; identical code is shared in `store`); what
    the job record says about it."""
    if code_dir is None:
        return {"code": None}
    snap = snapshot.take(code_dir, uncommitted, store=store)
    return {
        "code": str(snap.path),
        "commit": snap.commit,
        "dirty": snap.dirty,
        "uncommitted_files": len(snap.uncommitted_files or []),
    }


def submit(plan: SlurmPlan) -> str:
    """Snapshot the code, write the files, submit through submitit, record and return the job id."""
    code = take_snapshot(plan.code_dir, plan.uncommitted, plan.code_store)
    try:
        submit_arrays([plan.job], code)
    except scheduler.SchedulerError as err:
        raise ConfigError(str(err)) from err
    return str(plan.job.job_id)


def wait(job_id: str, log_path: Path, grace_s: float, poll_s: float = 1.0) -> Tuple[str, int, Optional[str]]:
    """cluster.wait=true: stream the job's log (tracebacks aside) until it ends; (final state, exit code for
    this process, the exception line of a traceback in the log, if any)."""
    shown = TerminalFilter()
    ended = wait_for_jobs([job_id], follow=log_path, poll_s=poll_s, grace_s=grace_s, shown=shown)[job_id]
    if ended.why:
        print(f"nemotron: {ended.why}; stopped waiting", file=sys.stderr, flush=True)
    return ended.state, ended.code, shown.refusal or shown.reason


def submitted_message(cfg: Any, plan: SlurmPlan, job_id: str) -> str:
    """What the user is told after submitting: job id, run dir, how to follow and check it."""
    ranks = ranks_per_node(cfg)
    partition = plan.member.record.get("partition")
    return (
        f"submitted {cfg.recipe.name} as Slurm job {job_id} "
        f"({cfg.resources.nodes} node(s) x {ranks} rank(s), partition {partition or 'default'})\n"
        f"  run dir: {plan.run_dir}\n  follow:  tail -f {plan.log_path}\n"
        f"  state:   sacct -j {job_id}    cancel: scancel {job_id}    "
        f"(or python -m nemotron.jobs follow|cancel {plan.run_dir})"
    )
