"""The schemas of where a run goes: the `cluster` group and the `resources` a job asks for.

Part of the run config (`nemotron.config.schema.RunConfig`); the same rules hold as there: every
field has a docstring, every numeric field a range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from nemotron.config.enums import Executor, Uncommitted
from nemotron.config.ranges import AT_LEAST_1, NON_NEGATIVE, POSITIVE, ranged


@dataclass
class ResourcesConfig:
    """What the job asks for; defaults come from the recipe's runspec, the cluster option may cap them."""

    nodes: int = ranged(1, AT_LEAST_1)
    """Nodes the job runs on."""
    gpus_per_node: int = ranged(0, NON_NEGATIVE)
    """GPUs per node; 0 trains on CPU."""
    procs_per_node: Optional[int] = ranged(None, AT_LEAST_1)
    """Ranks per node; null means one per GPU, or 1 on CPU."""


@dataclass
class ClusterConfig:
    """Where jobs run (group `cluster`)."""

    name: str = "local"
    """Name of the cluster option."""
    executor: Executor = Executor.local
    """Executor that starts the job."""
    gpus_per_node: int = ranged(0, NON_NEGATIVE)
    """GPUs a node of this cluster has (an upper bound on resources.gpus_per_node)."""
    max_nodes: Optional[int] = ranged(1, AT_LEAST_1)
    """Most nodes a job may ask for; null means no limit known."""
    gpu_memory_gb: Optional[float] = ranged(None, POSITIVE)
    """Memory of one GPU in GiB, as nvidia-smi counts it (H100/A100 80GB: 80, H200: 141, B200: 180,
    GB200: 186), for the pre-flight memory check; null: unknown (the check says it cannot run)."""
    env: Dict[str, str] = field(default_factory=dict)
    """Environment variables set for every job on this cluster (override the runspec's env)."""
    secret_names: List[str] = field(default_factory=list)
    """Environment variable names that hold secrets besides those whose last `_` part is KEY, TOKEN,
    SECRET, PASSWORD, PASSWD or CREDENTIALS (e.g. [MY_CREDS]): kept out of every file a run writes
    (the job reads them from a 0600 secrets file or its environment) and out of what is printed."""
    partition: Optional[str] = None
    """Slurm partition (sbatch --partition); null uses the cluster's default partition."""
    account: Optional[str] = None
    """Slurm account to charge (sbatch --account); null sends none."""
    qos: Optional[str] = None
    """Slurm quality of service (sbatch --qos); null sends none."""
    time_limit: int = ranged(240, AT_LEAST_1)
    """Wall-clock limit of a job in minutes (sbatch --time)."""
    cpus_per_task: int = ranged(1, AT_LEAST_1)
    """CPUs per rank (sbatch --cpus-per-task; also exported as SRUN_CPUS_PER_TASK for srun)."""
    mem_gb: Optional[int] = ranged(None, AT_LEAST_1)
    """Memory per node in GB (sbatch --mem); null sends none (the partition's default)."""
    container_image: Optional[str] = None
    """Container image each rank runs in (pyxis srun --container-image); null runs on the host."""
    container_mounts: List[str] = field(default_factory=list)
    """pyxis mounts `src:dst[:flags]` (srun --container-mounts); the repo and outputs must be visible."""
    pyxis: bool = False
    """Whether the cluster has pyxis/enroot; a container_image without it is refused."""
    setup: List[str] = field(default_factory=list)
    """Shell lines the batch script runs before srun (module loads, activating an environment)."""
    python: Optional[str] = None
    """The python the ranks and the environment check run (a path or a command on the job's PATH, e.g.
    an environment `setup` builds, see docs/containers.md); null: `python` inside container_image, else
    the submitting python."""
    env_check: bool = True
    """Run launchers/env_check.py as the job's first step (one srun task, in the container if any): the
    job fails in one line naming what its environment lacks, before the ranks start."""
    require_cuda: bool = True
    """Whether that check requires torch to see CUDA when the run asks for GPUs; false only where the
    GPUs are fake and ranks train on the CPU (cluster=slurm_test)."""
    wait: bool = False
    """After submitting, follow the job's log and exit with its state instead of returning at once."""
    wait_grace_s: float = ranged(60.0, NON_NEGATIVE)
    """How long cluster.wait keeps waiting for a job neither sacct nor squeue knows (a pending array task
    that was cancelled, a job slurmctld forgot while the accounting daemon is down) before it ends with
    state UNKNOWN and exit 1."""
    signal_delay_s: int = ranged(120, NON_NEGATIVE)
    """Seconds before the time limit Slurm sends SIGUSR2 (sbatch --signal): the run saves a checkpoint
    and the job requeues itself; must cover one training step plus a checkpoint save."""
    max_requeues: int = ranged(3, NON_NEGATIVE)
    """How often a job stopped by that signal (or preempted) is requeued to resume; 0 never requeues."""
    max_array_size: Optional[int] = ranged(None, AT_LEAST_1)
    """Most members in one Slurm job array; a larger sweep is split. null: the cluster's MaxArraySize
    (from `scontrol show config`, 1001 if it does not answer)."""
    array_parallelism: Optional[int] = ranged(None, AT_LEAST_1)
    """Most members of a sweep array running at once (sbatch --array=...%N); null: no cap."""
    snapshot: bool = True
    """Copy the code into the run (or sweep) directory at submit and run the job from that copy, so
    editing files or switching branches while it is queued changes nothing."""
    transformer_engine: Optional[bool] = None
    """Whether the job's environment (the container image, or the python the job runs) has Transformer
    Engine: the layouts that need it (sequence or context parallelism, the TE layer spec) are checked
    against this at compose. null: as this machine's python has it installed. A run without GPUs never
    uses it."""
    mamba_ssm: Optional[bool] = None
    """Whether the job's environment has mamba_ssm (and causal-conv1d): Mamba layers then run its fused
    kernels and the TE hybrid spec; null: as this machine's python has it installed."""
    uncommitted: Uncommitted = Uncommitted.ship
    """Uncommitted changes in the code at submit: `ship` them in the snapshot (recorded in
    code/SNAPSHOT.json and uncommitted.diff) or `refuse` to submit."""
