"""What a test cluster is made of: `Layout` (the paths and ports of one cluster root) and `ClusterInfo`
(where a running cluster is and what it offers, saved as `<root>/cluster.json`). Used by cluster.py."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    """Where a running test cluster is and what it offers (also saved as `<root>/cluster.json`)."""

    root: str  # the --root directory holding everything
    slurm_conf: str  # export as SLURM_CONF for sbatch/sacct/submitit
    cluster_name: str  # ClusterName, registered in slurmdbd
    partition: str  # the one (default) partition
    nodes: list[str]  # node names, resolvable through /etc/hosts
    node_addrs: list[str]  # their loopback addresses
    cpus_per_node: int  # CPUs each node declares (may exceed the host's)
    mem_mb_per_node: int  # RealMemory per node: --mem must not exceed it
    gpus_per_node: int  # fake GPUs per node (GRES gpu, devices alias /dev/null)
    pids: dict[str, int]  # daemon name -> PID this module started

    @property
    def env(self) -> dict[str, str]:
        """Environment for a process that talks to this cluster."""
        return {"SLURM_CONF": self.slurm_conf}


@dataclasses.dataclass(frozen=True)
class Layout:
    """The paths and ports of one cluster root."""

    root: Path
    num_nodes: int = 2
    gpus_per_node: int = 8
    cpus_per_node: int = max(os.cpu_count() or 1, 4)
    mem_mb_per_node: int = 4096
    partition: str = "debug"
    cluster_name: str = "nemotrontest"
    ctld_port: int = 16817
    dbd_port: int = 16819
    db_port: int = 16306
    slurmd_port_base: int = 16900  # node i listens on base + i

    etc = property(lambda self: self.root / "etc")  # slurm.conf, slurmdbd.conf, gres.conf
    run = property(lambda self: self.root / "run")  # <daemon>.pid: "PID STARTTIME" of each daemon we started
    log = property(lambda self: self.root / "log")  # daemon logs and their stdout/stderr (<daemon>.out)
    state = property(lambda self: self.root / "state")  # slurmctld's StateSaveLocation
    spool = property(lambda self: self.root / "spool")  # one SlurmdSpoolDir per node
    db = property(lambda self: self.root / "db")  # MariaDB data directory and socket
    munge = property(lambda self: self.root / "munge")  # munged's key, socket, seed
    fakegpu = property(lambda self: self.root / "fakegpu")  # per node: nvidia<i> char devices aliasing /dev/null
    DIRS = ("etc", "run", "log", "state", "spool", "db", "munge", "fakegpu")

    @property
    def slurm_conf(self) -> Path:
        return self.etc / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.munge / "munge.socket"

    @property
    def db_socket(self) -> Path:
        return self.db / "mysqld.sock"

    def node(self, i: int) -> tuple[str, str, int]:
        """Name, loopback address and slurmd port of node i (1-based)."""
        return f"n{i}", f"127.0.0.{10 + i}", self.slurmd_port_base + i

    @property
    def node_names(self) -> list[str]:
        return [self.node(i)[0] for i in range(1, self.num_nodes + 1)]
