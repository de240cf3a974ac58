"""What a run's Slurm job is made of, as submitit's Slurm executor takes it: parameters, setup, ranks.

`job_parts(cfg, ...)` turns a validated config into `JobParts`: the executor's parameters (nodes,
`ntasks_per_node`, GPUs, partition, time, signal, requeue, `--chdir`), the batch-script lines that run
before `srun` (env, code snapshot on PYTHONPATH, rendezvous address), the srun arguments (pyxis), how
each rank starts submitit's job runner, and the recipe command every rank runs (see `task.RankTask`).
Members of a sweep whose parts are equal share one job array; `header_lines` adds what differs per job
(its run dir or the array's list of run dirs, the member labels). submitit renders the script itself
(`submitit_compat.script_text`), so a dry run prints byte for byte what sbatch receives.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from nemotron.common.paths import REPO_ROOT
from nemotron.common.topology import ranks_per_node
from nemotron.config.validate import ConfigError
from nemotron.launchers import env_check
from nemotron.launchers.local import process_argv
from nemotron.launchers.snapshot import CODE_PATHS, snapshot_rel
from nemotron.tracking.secrets import is_secret_name
from nemotron.tracking.settings import MEMBER_ENV

RUN_DIR_MARK = "@@RUN_DIR@@"
"""Stands for the member's run directory in the recipe command until a member's task is made."""
RANK_ENV = (
    'export RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS LOCAL_RANK=$SLURM_LOCALID LOCAL_WORLD_SIZE={local}; exec "$@"'
)
"""What each srun task runs before submitit's job runner: torch.distributed's variables from Slurm's."""
CODE_DIR = "code"
"""Name of the code snapshot directory inside a run (or sweep) directory (a link into CODE_STORE)."""
CODE_STORE = ".code"
"""Folder under paths.output_root holding each distinct snapshot once (launchers/snapshot.py)."""
SUBMITIT_DIR = "submitit"
"""submitit's folder inside a run (or sweep) directory: the pickled tasks, results and rank logs."""
STARTED = (
    'echo "nemotron: job $SLURM_JOB_ID{array} on $SLURM_JOB_NODELIST, '
    'restart ${{SLURM_RESTART_COUNT:-0}}, run dir $RUN_DIR, $(date)"'
)


@dataclass
class JobParts:
    """One run's job, as parts: what the allocation looks like and what runs in it."""

    params: Dict[str, Any]
    """submitit SlurmExecutor parameters (sbatch options, setup, srun args), shared by an array."""
    argv: List[str]
    """One rank's recipe command; RUN_DIR_MARK stands for the member's run directory."""
    python: str
    """The shell words srun runs submitit's job runner with (rank env, then a python)."""
    max_requeues: int
    """submitit's max_num_timeout: how often a run stopped by Slurm's signal is requeued."""
    secrets: Dict[str, str] = field(default_factory=dict)
    """Secret-named environment variables, written to `$RUN_DIR/secrets.env` (0600), sourced by the script."""

    def key(self) -> tuple:
        """Members with equal keys can share one job array."""
        return (
            json.dumps(self.params, sort_keys=True, default=str),
            *self.argv,
            self.python,
            self.max_requeues,
            *sorted(self.secrets.items()),
        )


# ---------------------------------------------------------------- parts of one run


def rank_argv(cfg: Any, config_path: str, code_dir: Optional[Path]) -> List[str]:
    """One rank's command; the snapshot's copy of the recipe script; inside a container the image's python."""
    argv = process_argv(cfg, Path(config_path))
    if code_dir is not None:
        argv = [str(in_snapshot(a, code_dir)) for a in argv]
    if argv and argv[0] == sys.executable:
        argv[0] = rank_python(cfg)
    return argv


def rank_python(cfg: Any) -> str:
    """The python the ranks (and the environment check) run: `cluster.python`, else the image's `python`
    inside a container, else this submitting python on the host."""
    c = cfg.cluster
    return str(c.python) if c.python else ("python" if c.container_image else sys.executable)


def in_snapshot(arg: str, code_dir: Path) -> str:
    """A path to a file the snapshot copies (under nemotron/, recipes/, ...), moved into it; else unchanged."""
    path = Path(arg)
    if not path.is_absolute() or not path.is_relative_to(REPO_ROOT) or path == REPO_ROOT:
        return arg
    rel = path.relative_to(REPO_ROOT)
    return str(code_dir / snapshot_rel(str(rel))) if rel.parts[0] in CODE_PATHS else arg


def executor_params(cfg: Any, cwd: Path, setup: List[str], launcher: Mapping[str, Any]) -> Dict[str, Any]:
    """submitit's parameters from the cluster option and resources; `hydra.launcher.*` keys set by the
    user (stock hydra-submitit-launcher names, see `launcher_conf`) take precedence where they may."""
    c, res = cfg.cluster, cfg.resources
    params: Dict[str, Any] = {
        "job_name": cfg.recipe.name,
        "nodes": int(res.nodes),
        "ntasks_per_node": ranks_per_node(cfg),
        "gpus_per_node": int(res.gpus_per_node) or None,
        "cpus_per_task": int(c.cpus_per_task),
        "mem": f"{c.mem_gb}GB" if c.mem_gb else None,
        "partition": c.partition,
        "account": c.account,
        "qos": c.qos,
        "time": int(c.time_limit),
        "signal_delay_s": int(c.signal_delay_s),
        "setup": [*c.setup, *setup],
        "srun_args": ["--kill-on-bad-exit=1", *container_args(cfg, cwd)],
        "additional_parameters": {"chdir": str(cwd), **({"requeue": True} if c.max_requeues > 0 else {})},
        "stderr_to_stdout": True,
        "wckey": "nemotron",
    }
    from nemotron.launchers.launcher_conf import apply_launcher_keys

    return apply_launcher_keys(params, launcher, cfg)


def container_args(cfg: Any, cwd: Path) -> List[str]:
    """pyxis flags with an image (the container starts in the runspec's workdir, else in the submit
    directory, like the job itself, so relative paths in the config mean the same inside)."""
    c = cfg.cluster
    if not c.container_image:
        return []
    mounts = [f"--container-mounts={','.join(c.container_mounts)}"] if c.container_mounts else []
    return [f"--container-image={c.container_image}", *mounts, f"--container-workdir={cfg.recipe.workdir or cwd}"]


def env_setup(cfg: Any, code_dir: Optional[Path], secrets: Optional[Dict[str, str]] = None) -> tuple:
    """(setup lines exporting the env, secrets split off): runspec env, then cluster env; `secrets`
    (from nemotron.config.dump.config_yaml) adds those interpolated from this process's environment."""
    merged = {**dict(cfg.recipe.env), **dict(cfg.cluster.env), "PYTHONUNBUFFERED": "1"}
    names = [str(n) for n in cfg.cluster.secret_names]
    secrets = {**{k: v for k, v in merged.items() if is_secret_name(k, names)}, **(secrets or {})}
    env = {k: v for k, v in merged.items() if k not in secrets}
    lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())]
    if code_dir is not None:  # the snapshot's `nemotron` wins over the installed one and over the cwd
        lines.append(f"export PYTHONPATH={shlex.quote(str(code_dir))}${{PYTHONPATH:+:$PYTHONPATH}} PYTHONSAFEPATH=1")
    if secrets:
        lines.append('set -a; source "$RUN_DIR"/secrets.env; set +a')
    lines += [
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        "export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))",
        "export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK  # Slurm >= 22.05 no longer passes it to srun",
    ]
    return lines, secrets


def job_parts(
    cfg: Any,
    cwd: Path,
    code_dir: Optional[Path],
    launcher: Optional[Mapping[str, Any]] = None,
    secrets: Optional[Dict[str, str]] = None,
) -> JobParts:
    """The job of one validated run (`secrets`: see env_setup)."""
    check_launch(cfg)
    setup, secrets = env_setup(cfg, code_dir, secrets)
    setup += check_lines(cfg, cwd, code_dir)
    python = rank_python(cfg)
    runner = shlex.join(["bash", "-c", RANK_ENV.format(local=ranks_per_node(cfg)), "rank", python])
    return JobParts(
        params=executor_params(cfg, cwd, setup, launcher or {}),
        argv=rank_argv(cfg, f"{RUN_DIR_MARK}/config.yaml", code_dir),
        python=runner,
        max_requeues=int((launcher or {}).get("max_num_timeout") or cfg.cluster.max_requeues),
        secrets=secrets,
    )


def check_lines(cfg: Any, cwd: Path, code_dir: Optional[Path]) -> List[str]:
    """The environment check (`env_check.py`) as one srun step of one task before the ranks' step: in
    the container when there is an image (the batch script itself runs on the host), with the ranks'
    python; it fails the job in one line naming what is missing. `cluster.env_check=false`: none."""
    c = cfg.cluster
    if not c.env_check:
        return []
    script = code_dir / snapshot_rel("launchers/env_check.py") if code_dir else Path(env_check.__file__)
    where = f"image {c.container_image}" if c.container_image else "python"
    words = ["srun", "--nodes=1", "--ntasks=1", *container_args(cfg, cwd), rank_python(cfg), str(script)]
    words += [*(["--snapshot", str(code_dir)] if code_dir else []), "--where", where]
    gpus = int(cfg.resources.gpus_per_node) if c.require_cuda else 0
    words += [*(["--gpus", str(gpus)] if gpus else []), *(f"--need={n}" for n in declared_needs(cfg))]
    return ["# the environment the ranks run in holds what the job needs (launchers/env_check.py)", shlex.join(words)]


def declared_needs(cfg: Any) -> List[str]:
    """`env_check --need` names: mlflow for tracker=mlflow; on GPUs, the stack the cluster declares."""
    c, needs = cfg.cluster, ["mlflow"] if cfg.tracker.kind == "mlflow" else []
    if int(cfg.resources.gpus_per_node) > 0:
        needs += ["transformer-engine"] if c.get("transformer_engine") else []
        needs += ["mamba-ssm", "causal-conv1d"] if c.get("mamba_ssm") else []
    return needs


def check_launch(cfg: Any) -> None:
    """srun starts the ranks: `torchrun` and `direct` runspecs map onto it, `ray` does not."""
    launch = getattr(cfg.recipe.launch, "name", cfg.recipe.launch)
    ranks = int(cfg.resources.nodes) * ranks_per_node(cfg)
    if launch == "ray":
        raise ConfigError(f"recipe.launch=ray is not supported on cluster={cfg.cluster.name} (Slurm); use torchrun")
    if launch == "direct" and ranks > 1:
        raise ConfigError(f"recipe.launch=direct starts one process but the job has {ranks} ranks")


# ---------------------------------------------------------------- what differs per job


def header_lines(run_dirs: Sequence[Path], labels: Sequence[str], where: str, array: bool) -> List[str]:
    """The first setup lines: where the job (or array task) runs and what it says when it starts.

    A plain run names its run dir; Slurm writes its output to `<run_dir>/train.log`. An array (a sweep,
    even of one member) lists its members' run dirs and labels; task i takes the i-th and appends its output
    to that member's train.log.
    """
    if not array:
        return [f"# {where}", "set -eo pipefail", f"RUN_DIR={shlex.quote(str(run_dirs[0]))}", STARTED.format(array="")]
    return [
        f"# {where}",
        "set -eo pipefail",
        "RUN_DIRS=(",
        *(f"  {shlex.quote(str(d))}" for d in run_dirs),
        ")",
        'RUN_DIR="${RUN_DIRS[$SLURM_ARRAY_TASK_ID]}"',
        "MEMBERS=(",
        *(f"  {shlex.quote(label)}" for label in labels),
        ")",
        f'export {MEMBER_ENV}="${{MEMBERS[$SLURM_ARRAY_TASK_ID]}}"',
        'exec >>"$RUN_DIR/train.log" 2>&1',
        STARTED.format(array=" (array $SLURM_ARRAY_JOB_ID task $SLURM_ARRAY_TASK_ID)"),
    ]


def job_params(
    parts: JobParts, run_dirs: Sequence[Path], labels: Sequence[str], where: str, array: bool
) -> Dict[str, Any]:
    """The executor parameters of one job (a plain run, or an array of `run_dirs`)."""
    params = {**parts.params, "setup": [*header_lines(run_dirs, labels, where, array), *parts.params["setup"]]}
    params["additional_parameters"] = dict(params["additional_parameters"])
    if not array:
        params["additional_parameters"]["output"] = str(Path(run_dirs[0]) / "train.log")
    return params
