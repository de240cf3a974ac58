"""`hydra.launcher.*`: hydra-submitit-launcher's own keys, with its names and meanings, for our jobs.

`NemotronLauncherConf` extends the stock `SlurmQueueConf`, so `hydra.launcher.partition=batch`,
`timeout_min`, `tasks_per_node`, `additional_parameters`, ... mean what users of
`hydra/launcher=submitit_slurm` know. Every key defaults to null, which means *filled in by the
cluster option* and by the run's resources. The schema lives in the config layer because the
unknown-key check (`nemotron.config.keys`) reads `STOCK_KEYS`; the Hydra plugin
(`hydra_plugins.nemotron_launcher`) registers the dataclass and `nemotron.launchers.launcher_conf`
applies the keys a user set. No `from __future__ import annotations`: Hydra stores the dataclass from
plugin code, where string annotations cannot be resolved.
"""

from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

TARGET = "hydra_plugins.nemotron_launcher.nemotron_launcher.NemotronLauncher"


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
"""Every `hydra.launcher` key a user may set (the dataclass's fields but `_target_`)."""
