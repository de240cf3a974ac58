"""`hydra.launcher.*`: hydra-submitit-launcher's own keys, with its names and meanings, for our jobs.

`NemotronLauncherConf` extends the stock `SlurmQueueConf`, so `hydra.launcher.partition=batch`,
`timeout_min`, `tasks_per_node`, `additional_parameters`, ... mean what users of
`hydra/launcher=submitit_slurm` know. Every key defaults to null, which means *filled in by the
cluster option* (`cluster=dgx` sets partition, account, time, CPUs, setup, ...) and by the run's
resources (nodes, tasks, GPUs). A key set explicitly wins over the cluster option; nodes, tasks and
GPUs must agree with what the recipe's resources and parallel layout decide (one line otherwise).
Applies to plain runs and `-m` sweeps alike (a plain run is a launch of one member).
"""

from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional

from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

TARGET = "hydra_plugins.nemotron_launcher.nemotron_launcher.NemotronLauncher"
SUBMITIT_NAMES = {"timeout_min": "time", "tasks_per_node": "ntasks_per_node", "mem_gb": "mem", "name": "job_name"}
"""Stock key -> submitit SlurmExecutor parameter, where the names differ."""
DECIDED_BY_RESOURCES = {
    "nodes": "resources.nodes",
    "tasks_per_node": "resources.procs_per_node (or one per GPU)",
    "gpus_per_node": "resources.gpus_per_node",
}
"""Keys the run's resources decide; setting them in hydra.launcher must agree."""
NOT_PASSED = {"_target_", "submitit_folder", "max_num_timeout", "stderr_to_stdout"}
"""Keys that are not sbatch parameters (max_num_timeout bounds requeues: JobParts.max_requeues)."""


@dataclass
class NemotronLauncherConf(SlurmQueueConf):
    """hydra-submitit-launcher's SlurmQueueConf; null = from the cluster option and resources."""

    _target_: str = TARGET
    submitit_folder: str = "<run or sweep dir>/submitit"
    """Where submitit keeps pickles, results and rank logs (fixed: inside the run or sweep directory)."""
    timeout_min: Optional[int] = None  # type: ignore[assignment]
    """Time limit in minutes (sbatch --time); null: cluster.time_limit."""
    cpus_per_task: Optional[int] = None
    """CPUs per rank; null: cluster.cpus_per_task."""
    gpus_per_node: Optional[int] = None
    """GPUs per node; null: resources.gpus_per_node (must agree if set)."""
    tasks_per_node: Optional[int] = None  # type: ignore[assignment]
    """Ranks per node; null: resources (must agree if set)."""
    mem_gb: Optional[int] = None
    """Memory per node in GB; null: cluster.mem_gb."""
    nodes: Optional[int] = None  # type: ignore[assignment]
    """Nodes; null: resources.nodes (must agree if set)."""
    name: Optional[str] = None  # type: ignore[assignment]
    """Job name; null: the recipe's name."""
    partition: Optional[str] = None
    """Partition; null: cluster.partition."""
    qos: Optional[str] = None
    """Quality of service; null: cluster.qos."""
    account: Optional[str] = None
    """Account; null: cluster.account."""
    signal_delay_s: Optional[int] = None  # type: ignore[assignment]
    """Seconds before the time limit Slurm sends USR2 (save, then requeue); null: cluster.signal_delay_s."""
    max_num_timeout: Optional[int] = None  # type: ignore[assignment]
    """Most requeues after Slurm's signal (submitit's bound); null: cluster.max_requeues."""
    array_parallelism: Optional[int] = None  # type: ignore[assignment]
    """Most array tasks running at once (%N); null: cluster.array_parallelism, else no cap."""
    setup: Optional[List[str]] = None
    """Shell lines before srun, run after cluster.setup."""
    srun_args: Optional[List[str]] = None
    """Extra srun arguments (after ours: --kill-on-bad-exit=1 and the pyxis flags)."""
    additional_parameters: Dict[str, Any] = field(default_factory=dict)
    """Extra sbatch options, e.g. {mail-user: me@x.org, mail-type: END}; they win over ours."""


STOCK_KEYS = sorted(f.name for f in fields(NemotronLauncherConf) if f.name != "_target_")


def explicit(launcher: Any) -> Dict[str, Any]:
    """The hydra.launcher keys a user (or a cluster option) set: not null, not empty, not the fixed folder."""
    if launcher is None:
        return {}
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(launcher, resolve=True) if OmegaConf.is_config(launcher) else dict(launcher)
    defaults = NemotronLauncherConf()
    return {
        k: v
        for k, v in values.items()
        if k in STOCK_KEYS and v not in (None, {}, []) and v != getattr(defaults, k, None)
    }


def check_agrees(params: Dict[str, Any], launcher: Mapping[str, Any]) -> None:
    """nodes, tasks and GPUs come from the run's resources; a hydra.launcher value must match them."""
    from nemotron.config.validate import ConfigError

    for key, source in DECIDED_BY_RESOURCES.items():
        asked = launcher.get(key)
        decided = params[SUBMITIT_NAMES.get(key, key)] or 0
        if asked is not None and int(asked) != int(decided):
            raise ConfigError(
                f"hydra.launcher.{key}={asked} but the run's {source} decides {decided}; "
                f"set that instead (or leave hydra.launcher.{key} null)"
            )


def apply_launcher_keys(params: Dict[str, Any], launcher: Mapping[str, Any], cfg: Any) -> Dict[str, Any]:
    """Our executor parameters with the explicitly set stock keys applied."""
    if not launcher:
        return params
    check_agrees(params, launcher)
    if "submitit_folder" in launcher:
        from nemotron.config.validate import ConfigError

        raise ConfigError(
            f"hydra.launcher.submitit_folder={launcher['submitit_folder']}: fixed here "
            "(<run dir>/submitit, or <sweep dir>/submitit); leave it unset"
        )
    out = dict(params)
    for key, value in launcher.items():
        if key in NOT_PASSED or key in DECIDED_BY_RESOURCES:
            continue
        if key == "mem_gb":
            out["mem"] = f"{value}GB"
        elif key == "setup":
            out["setup"] = [*params["setup"], *value]
        elif key == "srun_args":
            out["srun_args"] = [*params["srun_args"], *value]
        elif key == "additional_parameters":
            out["additional_parameters"] = {**params["additional_parameters"], **value}
        elif key == "array_parallelism":
            continue  # per array: arrays.py
        else:
            out[SUBMITIT_NAMES.get(key, key)] = value
    return out
