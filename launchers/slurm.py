"""Slurm dispatch for a cluster option with `executor: slurm`: preflight, sbatch script, submit, wait.

    python -m nemotron.train +recipe=gpt/pretrain cluster=slurm_test                 # submit, return
    python -m nemotron.train +recipe=gpt/pretrain cluster=slurm_test dry_run=true    # print the script
    python -m nemotron.train +recipe=gpt/pretrain cluster=slurm_test cluster.wait=true

The batch script is rendered by `nemotron.slurm_script` and submitted with `sbatch --parsable`, so
what a dry run prints is byte for byte the file a real submit writes (`<run_dir>/job.sbatch`) — no
pickles, nothing re-composed when the job starts: the job reads `<run_dir>/config.yaml`, resolved at
submission, and runs the code copied into `<run_dir>/code` at submission (`cluster.snapshot`). One rank per GPU
(or `resources.procs_per_node`) is started by `srun`; each rank gets torch.distributed's variables from
Slurm's. Secret-named variables go to a 0600 `secrets.env` the script sources, never into the script.
Like the rest of the compose/launch layer, this imports no torch, megatron or mlflow.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from nemotron.launchers import scheduler, snapshot
from nemotron.config.validate import ConfigError, ranks_per_node
from nemotron.launchers.script import CODE_DIR, job_parts, run_script
from nemotron.launchers.wait import wait as wait_for_jobs



@dataclass
class SlurmPlan:
    """One job: its batch script, where it and the job's files go, and the secrets kept out of it."""

    script: str
    """The exact batch script `sbatch` receives."""
    run_dir: Path
    """The run directory (config, script, log, job record)."""
    secrets: Dict[str, str] = field(default_factory=dict)
    """Secret-named environment variables, written to `secrets.env` (0600), sourced by the script."""
    code_dir: Optional[Path] = None
    """Where the code snapshot goes (the job runs from it); None runs the live checkout."""
    uncommitted: str = "ship"
    """What the snapshot does with uncommitted changes (cluster.uncommitted)."""

    script_path = property(lambda self: self.run_dir / "job.sbatch")
    log_path = property(lambda self: self.run_dir / "train.log")
    secrets_path = property(lambda self: self.run_dir / "secrets.env")
    record_path = property(lambda self: self.run_dir / "slurm_job.json")

    def describe(self) -> str:
        """What a dry run prints: the submit command, then the script exactly as it would be written."""
        secrets = f"; secrets {', '.join(sorted(self.secrets))} -> {self.secrets_path} (0600)" if self.secrets else ""
        code = f"; code snapshot -> {self.code_dir}" if self.code_dir else ""
        return (f"# would submit: sbatch --parsable {self.script_path} (log: {self.log_path}{secrets}{code})\n"
                f"{self.script}")


def code_dir_for(cfg: Any, base: Path) -> Optional[Path]:
    """`<base>/code` when the cluster option snapshots the code, else None."""
    return base / CODE_DIR if cfg.cluster.snapshot else None


def policy(cfg: Any) -> str:
    """cluster.uncommitted as a plain string."""
    return getattr(cfg.cluster.uncommitted, "value", cfg.cluster.uncommitted)


def plan_slurm(cfg: Any, cwd: Optional[Path] = None) -> SlurmPlan:
    """The job for a validated config; the script is fixed now, files are written at submit."""
    run_dir = Path(cfg.run_dir)
    code_dir = code_dir_for(cfg, run_dir)
    parts = job_parts(cfg, cwd or Path.cwd(), code_dir)
    script = run_script(cfg.recipe.name, cfg.cluster.name, parts, run_dir)
    return SlurmPlan(script=script, run_dir=run_dir, secrets=parts.secrets, code_dir=code_dir,
                     uncommitted=policy(cfg))


# ---------------------------------------------------------------- preflight

def check_container(cfg: Any) -> Optional[str]:
    c = cfg.cluster
    if c.container_image and not c.pyxis:
        return (f"cluster.container_image={c.container_image} needs pyxis, but cluster={c.name} has "
                "cluster.pyxis=false (set cluster.container_image=null, or cluster.pyxis=true)")
    return None


def check_partition(cfg: Any, parts: Dict[str, Dict[str, int]]) -> Optional[str]:
    """The partition exists and has enough nodes with enough GPUs."""
    name, res = cfg.cluster.partition, cfg.resources
    known = sorted(p for p in parts if p != "*")
    nodes = parts.get(name or "*")
    where = f"cluster.partition={name}" if name else "the default partition"
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
    return (f"cluster.uncommitted=refuse: {len(changed)} uncommitted file(s) in {snapshot.code_root()}: {shown}; "
            "commit or stash them, or set cluster.uncommitted=ship")


def preflight(cfg: Any) -> None:
    """Checks before anything reaches Slurm; partition checks only when sinfo answers. One line each."""
    problems = [check_container(cfg), check_uncommitted(cfg)]
    parts = scheduler.partitions()
    if parts is not None:
        problems.append(check_partition(cfg, parts))
    found = [p for p in problems if p]
    if found:
        raise ConfigError("\n".join(found))


# ---------------------------------------------------------------- submit, state, wait

def write_secrets(path: Path, secrets: Dict[str, str]) -> None:
    """KEY=value lines in a file only its owner can read (created 0600 before anything is written)."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(secrets.items())))


def write_files(plan: SlurmPlan) -> None:
    """The script (and the secrets beside it, 0600) in the run directory."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    if plan.secrets:
        write_secrets(plan.secrets_path, plan.secrets)
    plan.script_path.write_text(plan.script, encoding="utf-8")


def take_snapshot(code_dir: Optional[Path], uncommitted: str) -> Dict[str, Any]:
    """Copy the code for the job (nothing without a code dir); what the job record says about it."""
    if code_dir is None:
        return {"code": None}
    snap = snapshot.take(code_dir, uncommitted)
    return {"code": str(snap.path), "commit": snap.commit, "dirty": snap.dirty,
            "uncommitted_files": len(snap.uncommitted_files or [])}


def sbatch(script_path: Path, *options: str) -> str:
    """`sbatch --parsable <script>`; the job id, or a one-line error with sbatch's reason."""
    try:
        return scheduler.sbatch(script_path, *options)
    except scheduler.SchedulerError as err:
        raise ConfigError(str(err)) from err


def record_info(cfg: Any) -> Dict[str, Any]:
    """The parts of a job record that come from the config."""
    return {"recipe": cfg.recipe.name, "cluster": cfg.cluster.name, "partition": cfg.cluster.partition}


def job_record(info: Dict[str, Any], job_id: str, run_dir: Path, script: Path, **extra: Any) -> Dict[str, Any]:
    """What `python -m nemotron.jobs` reads back from `<run_dir>/slurm_job.json`."""
    return {"job_id": job_id, **info, "run_dir": str(run_dir), "script": str(script),
            "log": str(run_dir / "train.log"), "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}


def submit(plan: SlurmPlan, cfg: Any) -> str:
    """Snapshot the code, write the files, `sbatch --parsable` the script, record and return the job id."""
    code = take_snapshot(plan.code_dir, plan.uncommitted)
    write_files(plan)
    job_id = sbatch(plan.script_path)
    record = job_record(record_info(cfg), job_id, plan.run_dir, plan.script_path, **code)
    plan.record_path.write_text(json.dumps(record, indent=1) + "\n")
    return job_id


def wait(job_id: str, log_path: Path, poll_s: float = 1.0) -> Tuple[str, int]:
    """cluster.wait=true: stream the job's log until it ends; (final state, exit code for this process)."""
    ended = wait_for_jobs([job_id], follow=log_path, poll_s=poll_s)[job_id]
    if ended.why:
        print(f"nemotron: {ended.why}; stopped waiting", file=sys.stderr, flush=True)
    return ended.state, ended.code


def submitted_message(cfg: Any, plan: SlurmPlan, job_id: str) -> str:
    """What the user is told after submitting: job id, run dir, how to follow and check it."""
    ranks = ranks_per_node(cfg)
    return (f"submitted {cfg.recipe.name} as Slurm job {job_id} "
            f"({cfg.resources.nodes} node(s) x {ranks} rank(s), partition {cfg.cluster.partition or 'default'})\n"
            f"  run dir: {plan.run_dir}\n  follow:  tail -f {plan.log_path}\n"
            f"  state:   sacct -j {job_id}    cancel: scancel {job_id}")
