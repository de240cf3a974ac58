"""`hydra.launcher.*`: hydra-submitit-launcher's own keys, with its names and meanings, for our jobs.

`NemotronLauncherConf` (the schema, in `nemotron.config.schema_launcher`) extends the stock
`SlurmQueueConf`, so `hydra.launcher.partition=batch`, `timeout_min`, `tasks_per_node`,
`additional_parameters`, ... mean what users of `hydra/launcher=submitit_slurm` know. Every key
defaults to null, which means *filled in by the cluster option* (`cluster=dgx` sets partition,
account, time, CPUs, setup, ...) and by the run's resources (nodes, tasks, GPUs). A key set
explicitly wins over the cluster option; nodes, tasks and GPUs must agree with what the recipe's
resources and parallel layout decide (one line otherwise).
Applies to plain runs and `-m` sweeps alike (a plain run is a launch of one member).
"""

from typing import Any, Dict, Mapping

from nemotron.config.schema_launcher import STOCK_KEYS, NemotronLauncherConf

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
