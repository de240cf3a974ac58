"""Smoke check of the test cluster through submitit: a job COMPLETED, a raising job FAILED in sacct, and more.

    python tests/slurm/smoke_submitit.py --root /tmp/nemotron-slurm [--down]

Starts the cluster under --root if it is not already up (tests/slurm/cluster.py), submits a tiny job
that asks for 2 fake GPUs, one that raises, one killed before it writes a result, and a 2-node job whose
tasks meet over TCP on the node names; checks what submitit returns and what sacct records.
Exits 0 when both behave; prints the time each took. Not a pytest file (the default suite skips it).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cluster  # noqa: E402  (a sibling script, not a package)


def report_env() -> dict:
    """The job's view: which node, which fake GPUs."""
    return {k: os.environ.get(k) for k in ("SLURM_JOB_ID", "SLURMD_NODENAME", "CUDA_VISIBLE_DEVICES",
                                           "SLURM_GPUS_ON_NODE")}


def boom() -> None:
    raise ValueError("boom: this job is meant to fail")


def killed() -> None:
    """Dies without writing a result: only sacct can tell submitit the job is over."""
    os.kill(os.getpid(), signal.SIGKILL)


def rendezvous(port: int = 29517) -> str:
    """Task 1 connects to task 0 on the first node's name: the node names resolve to loopback addresses."""
    import submitit

    env = submitit.JobEnvironment()
    first = env.hostnames[0]
    if env.global_rank == 0:
        with socket.create_server((socket.gethostbyname(first), port)) as server:
            server.settimeout(60)
            conn, peer = server.accept()
            with conn:
                return f"rank 0 on {env.hostname} accepted rank 1 from {conn.recv(64).decode()} ({peer[0]})"
    for _ in range(100):
        try:
            with socket.create_connection((first, port), timeout=5) as conn:
                conn.sendall(env.hostname.encode())
                return f"rank 1 on {env.hostname} reached {first}"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"rank 1 could not reach {first}:{port}")


def sacct_state(job_id: str, timeout_s: float = 30.0) -> str:
    """The job's final state as accounting records it (it may lag the job's end by a moment)."""
    deadline, state = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State,ExitCode"],
                             capture_output=True, text=True).stdout.strip()
        state = out.splitlines()[0] if out else ""
        if state and not state.startswith(("PENDING", "RUNNING", "COMPLETING")):
            return state
        time.sleep(0.5)
    return state or "(no record)"


def check(name: str, good: bool, detail: str) -> bool:
    print(f"{'ok  ' if good else 'FAIL'} {name}: {detail}", flush=True)
    return good


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="/tmp/nemotron-slurm", help="cluster root (see cluster.py)")
    parser.add_argument("--down", action="store_true", help="stop the cluster afterwards")
    args = parser.parse_args()
    info = cluster.start(args.root)
    os.environ.update(info.env)
    import submitit  # after SLURM_CONF is set: submitit calls sbatch/sacct in this environment

    folder = Path(tempfile.mkdtemp(prefix="smoke-", dir=info.root)) / "%j"
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    ex.update_parameters(timeout_min=5, slurm_partition=info.partition, gpus_per_node=2, cpus_per_task=1, mem_gb=1)
    results = []

    t0 = time.monotonic()
    job = ex.submit(report_env)
    env = job.result()
    results.append(check("job result", env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["SLURMD_NODENAME"] in info.nodes,
                         f"{env} in {time.monotonic() - t0:.1f} s"))
    state = sacct_state(job.job_id)
    results.append(check("sacct COMPLETED", state.startswith("COMPLETED"), f"job {job.job_id}: {state}"))

    t0 = time.monotonic()
    job = ex.submit(boom)
    try:
        job.result()
        results.append(check("failing job raises", False, "result() returned"))
    except submitit.core.utils.FailedJobError as err:
        results.append(check("failing job raises", "boom" in str(err),
                             f"FailedJobError in {time.monotonic() - t0:.1f} s"))
    state = sacct_state(job.job_id)
    results.append(check("sacct FAILED", state.startswith("FAILED"), f"job {job.job_id}: {state}"))

    t0 = time.monotonic()
    job = ex.submit(killed)
    try:
        job.result()
        results.append(check("killed job raises", False, "result() returned"))
    except submitit.core.utils.UncompletedJobError:
        results.append(check("killed job raises", True, f"UncompletedJobError in {time.monotonic() - t0:.1f} s"))
    state = sacct_state(job.job_id)
    results.append(check("sacct not COMPLETED", not state.startswith("COMPLETED"), f"job {job.job_id}: {state}"))

    t0 = time.monotonic()
    ex.update_parameters(nodes=2, tasks_per_node=1)
    job = ex.submit(rendezvous)
    lines = job.results()
    results.append(check("2-node rendezvous", len(lines) == 2, f"{lines} in {time.monotonic() - t0:.1f} s"))

    if args.down:
        cluster.stop(info.root)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
