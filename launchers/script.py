"""The batch scripts `sbatch` receives: one job for a plain run, one job array for a sweep's members.

Both are rendered from the resolved config, so a dry run prints byte for byte what a submit writes.
The part that runs the recipe (the *body*) is the same for every member of an array: it reads the
member's files through `$RUN_DIR`, which the script header sets (a plain run) or picks from the
array's list by `$SLURM_ARRAY_TASK_ID`. The body ends with the requeue step: a run stopped by
Slurm's signal exits with `exit_codes.PREEMPTED` after saving a checkpoint, and the script requeues
the job (same run dir, so it resumes) until `cluster.max_requeues` restarts have been used.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from nemotron import exit_codes
from nemotron.config.validate import ConfigError, ranks_per_node
from nemotron.launchers.local import process_argv
from nemotron.paths import REPO_ROOT
from nemotron.launchers.snapshot import CODE_PATHS
from nemotron.tracking.secrets import is_secret_name
from nemotron.tracking.settings import MEMBER_ENV

RUN_DIR_MARK = "@@RUN_DIR@@"
"""Stands for the run directory while the body is rendered; becomes `"$RUN_DIR"` in the script."""
RANK_ENV = (
    "export RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID "
    "LOCAL_WORLD_SIZE={local}; exec \"$@\""
)
"""What each srun task runs before the recipe: torch.distributed's variables from Slurm's."""
CODE_DIR = "code"
"""Name of the code snapshot directory inside a run (or sweep) directory."""


@dataclass
class JobParts:
    """One run's job, as parts: what the allocation looks like and what runs in it."""

    directives: List[Tuple[str, Any]]
    """sbatch options shared by every member of an array (no --output, no --array)."""
    body: List[str]
    """Shell lines after the header; the run directory appears as `"$RUN_DIR"`."""
    secrets: Dict[str, str] = field(default_factory=dict)
    """Secret-named environment variables, written to `$RUN_DIR/secrets.env` (0600), sourced by the body."""

    def key(self) -> Tuple[str, ...]:
        """Members with equal keys can share one job array."""
        return (*directive_lines(self.directives), *self.body, *sorted(self.secrets.items()))


# ---------------------------------------------------------------- parts of one run

def rank_argv(cfg: Any, config_path: str, code_dir: Optional[Path]) -> List[str]:
    """One rank's command; the snapshot's copy of the recipe script; inside a container the image's python."""
    argv = process_argv(cfg, Path(config_path))
    if code_dir is not None:
        argv = [str(in_snapshot(a, code_dir)) for a in argv]
    if cfg.cluster.container_image and argv and argv[0] == sys.executable:
        argv[0] = "python"
    return argv


def in_snapshot(arg: str, code_dir: Path) -> str:
    """A path to a file the snapshot copies (under nemotron/, recipes/, ...), moved into it; else unchanged."""
    path = Path(arg)
    if not path.is_absolute() or not path.is_relative_to(REPO_ROOT) or path == REPO_ROOT:
        return arg
    rel = path.relative_to(REPO_ROOT)
    return str(code_dir / rel) if rel.parts[0] in CODE_PATHS else arg


def job_directives(cfg: Any, cwd: Path) -> List[Tuple[str, Any]]:
    """The #SBATCH options: shape of the job, where it runs, requeue on Slurm's signal."""
    c, res = cfg.cluster, cfg.resources
    return [
        ("job-name", cfg.recipe.name), ("nodes", res.nodes), ("ntasks-per-node", ranks_per_node(cfg)),
        ("gpus-per-node", res.gpus_per_node or None), ("cpus-per-task", c.cpus_per_task),
        ("mem", f"{c.mem_gb}G" if c.mem_gb else None), ("partition", c.partition), ("account", c.account),
        ("qos", c.qos), ("time", c.time_limit), ("chdir", cwd),
        ("signal", f"USR2@{c.signal_delay_s}"), ("requeue", True if c.max_requeues > 0 else None),
    ]


def directive_lines(opts: Sequence[Tuple[str, Any]]) -> List[str]:
    """`#SBATCH --key=value` lines (`--key` for flags); options set to None are left out."""
    lines = []
    for key, value in opts:
        if value is True:
            lines.append(f"#SBATCH --{key}")
        elif value is not None:
            lines.append(f"#SBATCH --{key}={shlex.quote(str(value))}")
    return lines


def srun_line(cfg: Any, argv: List[str], cwd: Path) -> str:
    """srun: one task per rank, the whole job killed when one rank fails; pyxis flags with an image
    (the container starts in the runspec's workdir, else in the submit directory, like the job itself,
    so relative paths in the config mean the same inside)."""
    c = cfg.cluster
    srun = ["srun", "--kill-on-bad-exit=1"]
    if c.container_image:
        srun.append(f"--container-image={c.container_image}")
        if c.container_mounts:
            srun.append(f"--container-mounts={','.join(c.container_mounts)}")
        srun.append(f"--container-workdir={cfg.recipe.workdir or cwd}")
    rank = ["bash", "-c", RANK_ENV.format(local=ranks_per_node(cfg)), "rank"]
    return shlex.join([*srun, *rank, *argv])


def requeue_lines(srun: str, max_requeues: int) -> List[str]:
    """Run srun; when the run stopped on Slurm's signal with a checkpoint, requeue the job (bounded).

    Rank 0 leaves `$RUN_DIR/preempted.json` once that checkpoint is complete; the marker, not srun's
    status, decides (srun may report a signal for the ranks it killed after the first one exited 75).
    `$SELF` is the job, or `<array>_<task>` in an array: the first task's own job id is the array's
    id, and `scontrol requeue <array id>` would requeue every task of the array.
    """
    marker, restarts = f'"$RUN_DIR"/{exit_codes.PREEMPTED_MARKER}', "${SLURM_RESTART_COUNT:-0}"
    said = "stopped by a signal after saving a checkpoint"
    return [
        "status=0",
        f"{srun} || status=$?",
        f'if [ "$status" -ne 0 ] && [ -f {marker} ]; then',
        f"  rm -f {marker}",
        f'  if [ "{restarts}" -lt {max_requeues} ]; then',
        f'    echo "nemotron: {said}; requeueing (restart $(({restarts} + 1)) of {max_requeues})"',
        '    if scontrol requeue "$SELF"; then exit 0; fi',
        "  else",
        f'    echo "nemotron: {said}; not requeued: {max_requeues} restart(s) used (cluster.max_requeues); '
        'resubmit into the same run dir to resume"',
        "  fi",
        "fi",
        'exit "$status"',
    ]


def job_parts(cfg: Any, cwd: Path, code_dir: Optional[Path]) -> JobParts:
    """The job of one validated run (runspec env, then cluster env; secrets split off)."""
    check_launch(cfg)
    merged = {**dict(cfg.recipe.env), **dict(cfg.cluster.env), "PYTHONUNBUFFERED": "1"}
    secrets = {k: v for k, v in merged.items() if is_secret_name(k)}
    env = {k: v for k, v in merged.items() if k not in secrets}
    body = [*cfg.cluster.setup, *(f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items()))]
    if code_dir is not None:  # the snapshot's `nemotron` wins over the installed one
        body.append(f"export PYTHONPATH={shlex.quote(str(code_dir))}${{PYTHONPATH:+:$PYTHONPATH}}")
    if secrets:
        body.append(f"set -a; source {RUN_DIR_MARK}/secrets.env; set +a")
    body += [
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        "export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))",
        "export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK  # Slurm >= 22.05 no longer passes it to srun",
        *requeue_lines(srun_line(cfg, rank_argv(cfg, f"{RUN_DIR_MARK}/config.yaml", code_dir), cwd),
                       cfg.cluster.max_requeues),
    ]
    body = [line.replace(RUN_DIR_MARK, '"$RUN_DIR"') for line in body]
    return JobParts(directives=job_directives(cfg, cwd), body=body, secrets=secrets)


def check_launch(cfg: Any) -> None:
    """srun starts the ranks: `torchrun` and `direct` runspecs map onto it, `ray` does not."""
    launch = getattr(cfg.recipe.launch, "name", cfg.recipe.launch)
    ranks = int(cfg.resources.nodes) * ranks_per_node(cfg)
    if launch == "ray":
        raise ConfigError(f"recipe.launch=ray is not supported on cluster={cfg.cluster.name} (Slurm); use torchrun")
    if launch == "direct" and ranks > 1:
        raise ConfigError(f"recipe.launch=direct starts one process but the job has {ranks} ranks")


# ---------------------------------------------------------------- whole scripts

STARTED = ('echo "nemotron: job $SLURM_JOB_ID{array} on $SLURM_JOB_NODELIST, '
           'restart ${{SLURM_RESTART_COUNT:-0}}, run dir $RUN_DIR, $(date)"')


def run_script(name: str, cluster: str, parts: JobParts, run_dir: Path) -> str:
    """A plain run's script: Slurm writes its output straight to `<run_dir>/train.log`."""
    output = [("output", run_dir / "train.log"), ("open-mode", "append")]
    lines = [
        "#!/bin/bash",
        f"# {name} on cluster={cluster}: written by python -m nemotron.train, submitted with sbatch --parsable",
        *directive_lines([*parts.directives, *output]),
        "set -eo pipefail",
        f"RUN_DIR={shlex.quote(str(run_dir))}",
        'SELF="$SLURM_JOB_ID"  # what the requeue step requeues',
        STARTED.format(array=""),
        *parts.body,
    ]
    return "\n".join(lines) + "\n"


def array_script(name: str, cluster: str, parts: JobParts, run_dirs: Sequence[Path], slurm_dir: Path,
                 parallelism: Optional[int], where: str, labels: Sequence[str]) -> str:
    """One job array: task i runs in run_dirs[i] and appends its output to that run's train.log;
    labels[i] (the member's number and swept values, JSON) names its tracker run."""
    cap = f"%{parallelism}" if parallelism else ""
    array = [("array", f"0-{len(run_dirs) - 1}{cap}"), ("output", slurm_dir / "%A_%a.out"),
             ("open-mode", "append")]
    lines = [
        "#!/bin/bash",
        f"# {name} on cluster={cluster}: {where}; written by python -m nemotron.train -m",
        *directive_lines([*parts.directives, *array]),
        "set -eo pipefail",
        "RUN_DIRS=(",
        *(f"  {shlex.quote(str(d))}" for d in run_dirs),
        ")",
        'RUN_DIR="${RUN_DIRS[$SLURM_ARRAY_TASK_ID]}"',
        'SELF="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"  # this task only: the bare id of the first task is the whole array\'s',
        "MEMBERS=(",
        *(f"  {shlex.quote(label)}" for label in labels),
        ")",
        f'export {MEMBER_ENV}="${{MEMBERS[$SLURM_ARRAY_TASK_ID]}}"',
        'exec >>"$RUN_DIR/train.log" 2>&1',
        STARTED.format(array=" (array $SLURM_ARRAY_JOB_ID task $SLURM_ARRAY_TASK_ID)"),
        *parts.body,
    ]
    return "\n".join(lines) + "\n"
