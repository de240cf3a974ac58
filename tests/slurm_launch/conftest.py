"""A real Slurm cluster for the launcher tests: started once per session by tests/slurm/cluster.py.

Needs root (the daemons run as root; node names go into /etc/hosts). A healthy cluster already running
under the root is reused and left running; one this session started is stopped at the end.
Root: $NEMOTRON_SLURM_ROOT, default /tmp/nemotron-slurm (ports are fixed: one cluster per machine).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nemotron.launchers.scheduler import ACTIVE_STATES

REPO = Path(__file__).resolve().parents[2]

ROOT = Path(os.environ.get("NEMOTRON_SLURM_ROOT", "/tmp/nemotron-slurm"))


def load_cluster_module():
    """tests/slurm/cluster.py, imported from its folder (a script folder, not a package)."""
    sys.path.insert(0, str(REPO / "tests" / "slurm"))
    return importlib.import_module("cluster")


@pytest.fixture(scope="session")
def slurm_cluster():
    """The running test cluster's ClusterInfo; SLURM_CONF is set for this process and its children."""
    if os.geteuid() != 0:
        pytest.skip("the Slurm test cluster needs root (slurmd runs as root, node names go into /etc/hosts)")
    cluster = load_cluster_module()
    info = cluster.load_info(ROOT.resolve())
    reused = info is not None and cluster.healthy(cluster.Layout(ROOT.resolve()))
    info = cluster.start(ROOT)
    old = os.environ.get("SLURM_CONF")
    os.environ.update(info.env)
    yield info
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old
    if not reused:
        cluster.stop(ROOT)


@pytest.fixture(scope="session")
def wait_for_job(slurm_cluster):
    """wait_for_job(job_id, timeout_s) -> (State, ExitCode) from sacct once the job has ended."""

    def _wait(job_id: str, timeout_s: float = 60) -> tuple[str, str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            out = (
                subprocess.run(
                    ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State,ExitCode"], capture_output=True, text=True
                )
                .stdout.strip()
                .splitlines()
            )
            if out and out[0].split("|")[0].split()[0] not in ACTIVE_STATES:
                return tuple(out[0].split("|")[:2])
            time.sleep(0.5)
        raise AssertionError(f"Slurm job {job_id} did not end within {timeout_s} s")

    return _wait
