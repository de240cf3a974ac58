"""What `nemotron jobs|logs|cancel|resubmit|ui` do, on top of the launch layer (launchers/jobs.py).

Slurm work is delegated: following a job's log (`launchers.wait`), `scancel`, resubmitting a run,
sweep or pipeline (`launchers.resubmit`, `launchers.pipelines`). What is new here is local runs
(runs.py) and the MLflow UI on this project's store (`tracking.settings`). Bad input raises
`JobsError` (one line, exit 2).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import List, Optional

from nemotron.cookbook.runs import Run, find_runs, local_state, resolve, running_pids, tail
from nemotron.launchers import jobs as slurm_jobs
from nemotron.launchers import pipelines
from nemotron.launchers.job_records import JobsError
from nemotron.launchers.scheduler import ACTIVE_STATES

COLUMNS = ("RUN", "RECIPE", "STATE", "STEPS", "LOSS", "JOB", "RUN DIR")
ENDED_LINES = 20
"""Lines of the log `logs -f` prints for a run that has ended."""


def list_runs(root: Path, last: int) -> int:
    """One table of local runs and Slurm jobs, newest first; pipelines first, one line each."""
    units = pipelines.find(root) if root.is_dir() else []
    for line in pipelines.lines(units):
        print(line)
    runs = find_runs(root, last)
    if not runs:
        print(f"no runs under {root} (see --root; runs go to paths.output_root, default outputs)")
        return 0
    rows = [COLUMNS] + [(r.name, r.recipe, r.state, r.steps, r.last_loss, r.job_id, str(r.run_dir)) for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def show_log(target: str, root: Path, follow: bool, lines: Optional[int]) -> int:
    """Print a run's log (its last `lines`); with `follow`, until the run ends, then its state."""
    run = resolve(target, root)
    if not run.log.is_file() and not (follow and active(run)):
        raise JobsError(f"{run.name}: no log yet ({run.log}); state {run.state}")
    if follow and active(run):
        return follow_slurm(run) if run.job is not None else follow_local(run, lines)
    text = tail(run.log, lines or ENDED_LINES) if follow or lines else tail(run.log, 10**9)
    print("\n".join(text))
    if follow:
        print(f"{run.name}: {run.state} (ended; nothing to follow)", file=sys.stderr)
    return 0


def active(run: Run) -> bool:
    return run.state == "RUNNING" or (run.job is not None and run.state in ACTIVE_STATES)


def follow_slurm(run: Run) -> int:
    """Slurm's follow (launchers/jobs.py): the log until the job ends; 0 iff COMPLETED."""
    return slurm_jobs.cmd_follow(run.job, poll_s=1.0, grace_s=slurm_jobs.GRACE_S)


def follow_local(run: Run, lines: Optional[int], poll_s: float = 0.5) -> int:
    """Print the log's last lines, then what it grows by, until no process runs the run; its state."""
    shown = 0
    if run.log.is_file():
        old = tail(run.log, lines or ENDED_LINES)
        print("\n".join(old), flush=True)
        shown = run.log.stat().st_size
    while True:
        alive = bool(running_pids(run.run_dir))
        shown = print_new(run.log, shown)
        if not alive:
            break
        time.sleep(poll_s)
    state = local_state(run)
    print(f"{run.name}: {state}", file=sys.stderr)
    return 0 if state == "FINISHED" else 1


def print_new(path: Path, offset: int) -> int:
    """Print what `path` holds past `offset`; the new offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return offset
    if data:
        sys.stdout.write(data.decode("utf-8", errors="replace"))
        sys.stdout.flush()
    return offset + len(data)


def cancel(target: str, root: Path) -> int:
    """scancel a Slurm run (launchers/jobs.py); stop a local run's processes (SIGTERM, as Ctrl-C would)."""
    run = resolve(target, root)
    if run.job is not None:
        return slurm_jobs.cmd_cancel(run.job)
    pids = running_pids(run.run_dir)
    if not pids:
        raise JobsError(f"{run.name}: not running (state {run.state}); nothing to cancel")
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    print(f"stopped local run {run.name} (process {', '.join(map(str, pids))})")
    return 0


def resubmit(target: str, root: Path) -> int:
    """A run, sweep or pipeline directory (or a run's name or job id): launchers/jobs.py's resubmit."""
    path = Path(target)
    if not path.is_dir():
        path = resolve(target, root).run_dir
    return slurm_jobs.main(["--root", str(root), "resubmit", str(path)])


def port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def ui_argv(root: Path, port: int, host: str = "127.0.0.1") -> List[str]:
    """`python -m mlflow ui` on this project's store (tracking.settings: $MLFLOW_TRACKING_URI, else the
    sqlite store under the outputs root) with artifacts next to it, bound to `host`."""
    from nemotron.tracking.settings import is_local_store, local_artifact_root, tracking_uri

    uri = tracking_uri({"paths": {"output_root": str(root)}})
    if is_local_store(uri) and not Path(uri[len("sqlite:///") :]).is_file():
        raise JobsError(
            f"no MLflow store at {uri[len('sqlite:///') :]} (runs with tracker=mlflow create it; see --root)"
        )
    argv = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    argv += ["--workers", "1"]  # one person's browser: MLflow's default 4 workers take 4x the start time
    if is_local_store(uri):
        argv += ["--default-artifact-root", local_artifact_root(uri)]
    return argv


def ui(root: Path, port: int) -> int:
    """Replace this process with the MLflow UI on 127.0.0.1:`port`; a taken port is one line."""
    host = "127.0.0.1"
    if port_taken(host, port):
        raise JobsError(f"port {port} on {host} is taken; pick another with `nemotron ui --port {port + 1}`")
    argv = ui_argv(root, port, host)
    print(f"MLflow UI on http://{host}:{port} ({argv[argv.index('--backend-store-uri') + 1]}); Ctrl-C stops it")
    sys.stdout.flush()
    os.execv(sys.executable, argv)
    return 0  # not reached
