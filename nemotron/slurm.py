"""Slurm dispatch for a cluster option with `executor: slurm`: preflight, sbatch script, submit, wait.

    python -m nemotron.train +recipe=gpt/pretrain cluster=slurm_test                 # submit, return
    python -m nemotron.train +recipe=gpt/pretrain cluster=slurm_test dry_run=true    # print the script
    python -m nemotron.train +recipe=gpt/pretrain cluster=slurm_test cluster.wait=true

The batch script is rendered here and submitted with `sbatch --parsable`, so what a dry run prints is
byte for byte the file a real submit writes (`<run_dir>/job.sbatch`) — no pickles, nothing re-composed
when the job starts: the job reads `<run_dir>/config.yaml`, resolved at submission. One rank per GPU
(or `resources.procs_per_node`) is started by `srun`; each rank gets torch.distributed's variables from
Slurm's. Secret-named variables go to a 0600 `secrets.env` the script sources, never into the script.
Like the rest of the compose/launch layer, this imports no torch, megatron or mlflow.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from nemotron.config.validate import ConfigError, ranks_per_node
from nemotron.errors import child_environ
from nemotron.launch import process_argv
from nemotron.tracking.secrets import is_secret_name

RANK_ENV = (
    "export RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID "
    "LOCAL_WORLD_SIZE={local}; exec \"$@\""
)
"""What each srun task runs before the recipe: torch.distributed's variables from Slurm's."""
ACTIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED", ""}
"""sacct states of a job that has not ended ("" = not in the accounting database yet)."""
SINFO_TIMEOUT_S = 10
"""How long preflight waits for `sinfo` before skipping the partition checks."""


@dataclass
class SlurmPlan:
    """One job: its batch script, where it and the job's files go, and the secrets kept out of it."""

    script: str
    """The exact batch script `sbatch` receives."""
    run_dir: Path
    """The run directory (config, script, log, job record)."""
    secrets: Dict[str, str] = field(default_factory=dict)
    """Secret-named environment variables, written to `secrets.env` (0600), sourced by the script."""

    script_path = property(lambda self: self.run_dir / "job.sbatch")
    log_path = property(lambda self: self.run_dir / "train.log")
    secrets_path = property(lambda self: self.run_dir / "secrets.env")
    record_path = property(lambda self: self.run_dir / "slurm_job.json")

    def describe(self) -> str:
        """What a dry run prints: the submit command, then the script exactly as it would be written."""
        secrets = f"; secrets {', '.join(sorted(self.secrets))} -> {self.secrets_path} (0600)" if self.secrets else ""
        return f"# would submit: sbatch --parsable {self.script_path} (log: {self.log_path}{secrets})\n{self.script}"


# ---------------------------------------------------------------- the batch script

def rank_argv(cfg: Any, config_path: Path) -> List[str]:
    """One rank's command; inside a container the image's `python`, not this machine's."""
    argv = process_argv(cfg, config_path)
    if cfg.cluster.container_image and argv and argv[0] == sys.executable:
        argv[0] = "python"
    return argv


def sbatch_directives(cfg: Any, run_dir: Path, cwd: Path) -> List[str]:
    """The #SBATCH lines: shape of the job, where it runs and where its output goes."""
    c, res = cfg.cluster, cfg.resources
    opts: List[Tuple[str, Any]] = [
        ("job-name", cfg.recipe.name), ("nodes", res.nodes), ("ntasks-per-node", ranks_per_node(cfg)),
        ("gpus-per-node", res.gpus_per_node or None), ("cpus-per-task", c.cpus_per_task),
        ("mem", f"{c.mem_gb}G" if c.mem_gb else None), ("partition", c.partition), ("account", c.account),
        ("qos", c.qos), ("time", c.time_limit), ("output", run_dir / "train.log"), ("open-mode", "append"),
        ("chdir", cwd),
    ]
    return [f"#SBATCH --{k}={shlex.quote(str(v))}" for k, v in opts if v is not None]


def srun_line(cfg: Any, argv: List[str]) -> str:
    """srun: one task per rank, the whole job killed when one rank fails; pyxis flags with an image."""
    c = cfg.cluster
    srun = ["srun", "--kill-on-bad-exit=1"]
    if c.container_image:
        srun.append(f"--container-image={c.container_image}")
        if c.container_mounts:
            srun.append(f"--container-mounts={','.join(c.container_mounts)}")
        if cfg.recipe.workdir:
            srun.append(f"--container-workdir={cfg.recipe.workdir}")
    rank = ["bash", "-c", RANK_ENV.format(local=ranks_per_node(cfg)), "rank"]
    return shlex.join([*srun, *rank, *argv])


def render_script(cfg: Any, config_path: Path, env: Dict[str, str], secrets_path: Optional[Path],
                  cwd: Path) -> str:
    """The whole batch script (deterministic for a given config: dry run and submit agree)."""
    run_dir = Path(cfg.run_dir)
    lines = [
        "#!/bin/bash",
        f"# {cfg.recipe.name} on cluster={cfg.cluster.name}: written by python -m nemotron.train, "
        "submitted with sbatch --parsable",
        *sbatch_directives(cfg, run_dir, cwd),
        "set -eo pipefail",
        'echo "nemotron: job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, restart ${SLURM_RESTART_COUNT:-0}, $(date)"',
        *cfg.cluster.setup,
        *(f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())),
    ]
    if secrets_path is not None:
        lines.append(f"set -a; source {shlex.quote(str(secrets_path))}; set +a")
    lines += [
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        "export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))",
        "export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK  # Slurm >= 22.05 no longer passes it to srun",
        srun_line(cfg, rank_argv(cfg, config_path)),
    ]
    return "\n".join(lines) + "\n"


def plan_slurm(cfg: Any, config_path: Path, cwd: Optional[Path] = None) -> SlurmPlan:
    """The job for a validated config (runspec env, then cluster env; secrets split off)."""
    check_launch(cfg)
    merged = {**dict(cfg.recipe.env), **dict(cfg.cluster.env), "PYTHONUNBUFFERED": "1"}
    secrets = {k: v for k, v in merged.items() if is_secret_name(k)}
    env = {k: v for k, v in merged.items() if k not in secrets}
    run_dir = Path(cfg.run_dir)
    secrets_path = run_dir / "secrets.env" if secrets else None
    script = render_script(cfg, config_path, env, secrets_path, cwd or Path.cwd())
    return SlurmPlan(script=script, run_dir=run_dir, secrets=secrets)


# ---------------------------------------------------------------- preflight

def check_launch(cfg: Any) -> None:
    """srun starts the ranks: `torchrun` and `direct` runspecs map onto it, `ray` does not."""
    launch = getattr(cfg.recipe.launch, "name", cfg.recipe.launch)
    ranks = int(cfg.resources.nodes) * ranks_per_node(cfg)
    if launch == "ray":
        raise ConfigError(f"recipe.launch=ray is not supported on cluster={cfg.cluster.name} (Slurm); use torchrun")
    if launch == "direct" and ranks > 1:
        raise ConfigError(f"recipe.launch=direct starts one process but the job has {ranks} ranks")


def check_container(cfg: Any) -> Optional[str]:
    c = cfg.cluster
    if c.container_image and not c.pyxis:
        return (f"cluster.container_image={c.container_image} needs pyxis, but cluster={c.name} has "
                "cluster.pyxis=false (set cluster.container_image=null, or cluster.pyxis=true)")
    return None


def sinfo_partitions() -> Optional[Dict[str, Dict[str, int]]]:
    """partition -> {node: GPUs} from `sinfo` (default partition under key "*" too); None if no answer."""
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%P|%N|%G"], capture_output=True, text=True,
                             env=child_environ(), timeout=SINFO_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    parts: Dict[str, Dict[str, int]] = {}
    for line in out.stdout.splitlines():
        if line.count("|") != 2:
            continue
        part, node, gres = line.split("|")
        gpus = sum(int(n) for n in re.findall(r"gpu(?::[^:,(]+)?:(\d+)", gres))
        for key in {part.rstrip("*"), "*" if part.endswith("*") else part.rstrip("*")}:
            parts.setdefault(key, {})[node] = gpus
    return parts


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


def preflight(cfg: Any) -> None:
    """Checks before anything reaches Slurm; partition checks only when sinfo answers. One line each."""
    problems = [check_container(cfg)]
    parts = sinfo_partitions()
    if parts is not None:
        problems.append(check_partition(cfg, parts))
    found = [p for p in problems if p]
    if found:
        raise ConfigError("\n".join(found))


# ---------------------------------------------------------------- submit, state, wait

def write_files(plan: SlurmPlan) -> None:
    """The script (and the secrets beside it, 0600) in the run directory."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    if plan.secrets:
        plan.secrets_path.touch(mode=0o600)
        plan.secrets_path.chmod(0o600)
        plan.secrets_path.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(plan.secrets.items())))
    plan.script_path.write_text(plan.script, encoding="utf-8")


def submit(plan: SlurmPlan, cfg: Any) -> str:
    """Write the files, `sbatch --parsable` the script, record and return the job id."""
    write_files(plan)
    out = subprocess.run(["sbatch", "--parsable", str(plan.script_path)], capture_output=True, text=True,
                         env=child_environ(), timeout=60)
    if out.returncode != 0:
        reason = (out.stderr.strip() or out.stdout.strip()).splitlines()
        raise ConfigError(f"sbatch refused the job ({plan.script_path}): {reason[-1] if reason else out.returncode}")
    job_id = out.stdout.strip().split(";")[0]
    record = {"job_id": job_id, "recipe": cfg.recipe.name, "cluster": cfg.cluster.name,
              "partition": cfg.cluster.partition, "run_dir": str(plan.run_dir), "script": str(plan.script_path),
              "log": str(plan.log_path), "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    plan.record_path.write_text(json.dumps(record, indent=1) + "\n")
    return job_id


def job_state(job_id: str) -> Tuple[str, int]:
    """(state, exit code) of a job from sacct; ("", 0) while the database does not know it yet."""
    try:
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State,ExitCode"],
                             capture_output=True, text=True, env=child_environ(), timeout=30)
    except subprocess.TimeoutExpired:
        return "", 0
    line = next((ln for ln in out.stdout.splitlines() if "|" in ln), "")
    if not line:
        return "", 0
    state, exit_code = line.split("|")[:2]
    return state.split()[0], int(exit_code.split(":")[0] or 0)


def wait(job_id: str, log_path: Path, poll_s: float = 1.0) -> Tuple[str, int]:
    """Stream the job's log to stdout until it ends; (final state, exit code for this process)."""
    offset = 0
    while True:
        state, code = job_state(job_id)
        if log_path.exists():
            with log_path.open("r", encoding="utf-8", errors="replace") as log:
                log.seek(offset)
                sys.stdout.write(log.read())
                offset = log.tell()
            sys.stdout.flush()
        if state not in ACTIVE_STATES:
            return state, 0 if state == "COMPLETED" else (code or 1)
        time.sleep(poll_s)


def submitted_message(cfg: Any, plan: SlurmPlan, job_id: str) -> str:
    """What the user is told after submitting: job id, run dir, how to follow and check it."""
    ranks = ranks_per_node(cfg)
    return (f"submitted {cfg.recipe.name} as Slurm job {job_id} "
            f"({cfg.resources.nodes} node(s) x {ranks} rank(s), partition {cfg.cluster.partition or 'default'})\n"
            f"  run dir: {plan.run_dir}\n  follow:  tail -f {plan.log_path}\n"
            f"  state:   sacct -j {job_id}    cancel: scancel {job_id}")
