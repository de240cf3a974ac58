"""Slurm submit overhead on the throwaway test cluster: ours against submitit, one job and a sweep.

    python bench/submit_overhead.py [--members 256] [--reps 5] [--sweep-reps 2] [--big 1000] [--huge 2500]

(a) One job, command -> sbatch accepted: the wall time of `python -m nemotron.train +recipe=gpt/pretrain
    cluster=slurm_test ...` (it returns once sbatch has accepted the job) against
    `bench/submit_baselines/bare_submit.py`, a bare `@hydra.main` app that submits one function through
    `submitit.AutoExecutor` and exits. `--reps` alternating pairs; medians and minima. Target ours / bare
    <= 1.3. Both go through submitit's Slurm executor; ours also validates, preflights (sinfo,
    scontrol) and snapshots the code. Its run dirs lie under its output root, as by default, so the
    untimed warm-up stores the code once (`<output_root>/.code`) and each timed run links to it, as a
    resubmit of unchanged code does (a first submit of changed code also copies ~300 files).
(b) A `--members` sweep (`-m optim.lr=...`), command start -> every member visible in
    `squeue -r -p <partition>` (polled every 50 ms): our launcher (job arrays, then it returns; its process
    wall time is shown too) against the stock hydra-submitit-launcher on the same app
    (`hydra/launcher=submitit_slurm`), which blocks until the jobs end, so it is stopped once its array is
    visible. `--sweep-reps` alternating pairs. Target stock / ours >= 15.
(c) A `--big` sweep (ours only), command start -> all members in squeue. Target <= 5 s.
(d) A `--huge` sweep (ours only), larger than the cluster's MaxArraySize (1001): split into several
    arrays, every member accepted (counted in squeue).

Every job goes to a throwaway partition created DOWN on the cluster's nodes (`nemobench`), so nothing
runs: sbatch accepts the jobs and they pend. Each measurement ends with `scancel -p nemobench`; the
partition is deleted at the end. The cluster (tests/slurm/cluster.py, root $NEMOTRON_SLURM_ROOT or
/tmp/nemotron-slurm) is reused when healthy and stopped at the end only if this run started it.
Prints a table and, last, the two ratios.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
BARE_APP = REPO / "bench" / "submit_baselines" / "bare_submit.py"
ROOT = Path(os.environ.get("NEMOTRON_SLURM_ROOT", "/tmp/nemotron-slurm"))
PARTITION = "nemobench"
"""The throwaway DOWN partition every benchmark job goes to (never the cluster's own `debug`)."""
POLL_S = 0.05
"""squeue polling interval while waiting for a sweep's array."""
SWEEP_TIMEOUT_S = 120.0
"""Longest wait for a sweep's members to show up in squeue."""
STOP_GRACE_S = 3.0
"""SIGTERM -> SIGKILL grace for the stock launcher's process."""

OURS = [
    sys.executable,
    "-m",
    "nemotron.train",
    "+recipe=gpt/pretrain",
    "cluster=slurm_test",
    "tracker=none",
    f"cluster.partition={PARTITION}",
]


# ---------------------------------------------------------------- cluster and partition


def load_cluster_module():
    """tests/slurm/cluster.py, imported from its folder (a script folder, not a package)."""
    sys.path.insert(0, str(REPO / "tests" / "slurm"))
    return importlib.import_module("cluster")


@contextmanager
def test_cluster() -> Iterator[List[str]]:
    """The test cluster's node names, SLURM_CONF exported; stopped at the end only if started here."""
    cluster = load_cluster_module()
    root = ROOT.resolve()
    info = cluster.load_info(root)
    reused = info is not None and cluster.healthy(cluster.Layout(root))
    info = cluster.start(root)
    os.environ.update(info.env)
    try:
        yield info.nodes
    finally:
        if not reused:
            cluster.stop(root)


def slurm(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise SystemExit(f"submit_overhead: `{' '.join(cmd)}` failed: {out.stderr.strip() or out.stdout.strip()}")
    return out


def queued_tasks() -> int:
    """Pending/running tasks in the bench partition, arrays expanded (a 256-task array counts 256)."""
    return len(slurm("squeue", "-h", "-r", "-p", PARTITION, "-o", "%i").stdout.split())


def clear_partition() -> None:
    """Cancel everything in the bench partition and wait until squeue shows none of it."""
    slurm("scancel", "-p", PARTITION, check=False)
    deadline = time.monotonic() + 15
    while queued_tasks() and time.monotonic() < deadline:
        time.sleep(0.1)


@contextmanager
def down_partition(nodes: List[str]) -> Iterator[None]:
    """A partition over the cluster's nodes, State=DOWN: sbatch accepts jobs there and they pend."""
    if slurm("scontrol", "show", "partition", PARTITION, check=False).returncode == 0:
        clear_partition()  # left over from an interrupted run of this bench
        slurm("scontrol", "delete", f"PartitionName={PARTITION}")
    slurm("scontrol", "create", f"PartitionName={PARTITION}", f"Nodes={','.join(nodes)}", "State=DOWN", "MaxTime=10")
    try:
        yield
    finally:
        clear_partition()
        slurm("scontrol", "delete", f"PartitionName={PARTITION}", check=False)


# ---------------------------------------------------------------- (a) one job


def submit_wall(argv: List[str]) -> float:
    """Wall time of a command that returns once sbatch accepted its one job; the job is then cancelled."""
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    try:
        if out.returncode != 0:
            raise SystemExit(
                f"submit_overhead: {' '.join(argv[1:4])} ... exited {out.returncode}:\n"
                f"{(out.stdout + out.stderr)[-2000:]}"
            )
        if queued_tasks() != 1:
            raise SystemExit(f"submit_overhead: expected 1 job in {PARTITION} after {' '.join(argv[1:4])} ...")
    finally:
        clear_partition()
    return wall


def single_job(tmp: Path, reps: int) -> Tuple[List[float], List[float]]:
    """(ours, bare) wall times, `reps` alternating pairs after one untimed warm-up of each."""
    ours, bare = [], []
    for i in range(-1, reps):
        runs = [
            (ours, OURS + [f"paths.output_root={tmp}/outputs", f"hydra.run.dir={tmp}/outputs/ours-{i}"]),
            (bare, [sys.executable, str(BARE_APP), f"partition={PARTITION}", f"hydra.run.dir={tmp}/bare-{i}"]),
        ]
        for times, argv in runs if i % 2 else runs[::-1]:
            wall = submit_wall(argv)
            if i >= 0:
                times.append(wall)
    return ours, bare


# ---------------------------------------------------------------- (b) a sweep


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sweep_visible(argv: List[str], members: int, log: Path, blocks: bool) -> Tuple[float, Optional[float]]:
    """Seconds from start until all members are in squeue, and until the process exited (None if it blocks).

    A member counts as visible at the end of the first squeue call that lists it (resolution: one poll).
    A blocking process (the stock launcher) is stopped once its array is visible: scancel, then
    SIGTERM/SIGKILL to its PID.
    """
    visible = exited = None
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            while visible is None or (exited is None and not blocks):
                if exited is None and proc.poll() is not None:
                    exited = time.perf_counter() - start
                    if proc.returncode != 0 or blocks:
                        raise SystemExit(
                            f"submit_overhead: sweep exited {proc.returncode} before its jobs "
                            f"showed up; log {log}:\n{log.read_text()[-2000:]}"
                        )
                if visible is None and queued_tasks() >= members:
                    visible = time.perf_counter() - start
                if time.perf_counter() - start > SWEEP_TIMEOUT_S:
                    raise SystemExit(
                        f"submit_overhead: {members} members not in squeue after {SWEEP_TIMEOUT_S:.0f} s; log {log}"
                    )
                time.sleep(POLL_S)
        finally:
            clear_partition()
            stop_process(proc)
    return visible, exited


def sweep(tmp: Path, members: int, reps: int) -> Tuple[List[float], List[float], List[float]]:
    """(ours visible, ours process exit, stock visible) seconds, `reps` alternating pairs."""
    lrs = "optim.lr=" + ",".join(f"{1e-4 * (1 + i / members):.8g}" for i in range(members))
    ours, ours_exit, stock = [], [], []
    for i in range(reps):
        name = f"{PARTITION}-stock-{os.getpid()}-{i}"
        stock_argv = OURS + [
            f"hydra.sweep.dir={tmp}/stock-{i}",
            "-m",
            lrs,
            "hydra/launcher=submitit_slurm",
            f"hydra.launcher.partition={PARTITION}",
            f"hydra.launcher.name={name}",
            "hydra.launcher.timeout_min=10",
        ]  # submitit's default 60 exceeds MaxTime
        ours_argv = OURS + [f"hydra.sweep.dir={tmp}/ours-{i}", "-m", lrs]
        order = ["ours", "stock"] if i % 2 == 0 else ["stock", "ours"]
        for side in order:
            if side == "ours":
                visible, exited = sweep_visible(ours_argv, members, tmp / f"ours-{i}.log", blocks=False)
                ours.append(visible)
                ours_exit.append(exited)
            else:
                stock.append(sweep_visible(stock_argv, members, tmp / f"stock-{i}.log", blocks=True)[0])
    return ours, ours_exit, stock


def ours_only(tmp: Path, members: int, name: str) -> Tuple[float, float, int]:
    """(seconds until all `members` are in squeue, process exit, arrays submitted) for one sweep of ours."""
    lrs = "optim.lr=" + ",".join(f"{1e-4 * (1 + i / members):.8g}" for i in range(members))
    sweep_dir = tmp / name
    visible, exited = sweep_visible(
        OURS + [f"hydra.sweep.dir={sweep_dir}", "-m", lrs], members, tmp / f"{name}.log", blocks=False
    )
    arrays = len(list(sweep_dir.glob("array_*.sbatch")))
    return visible, exited or 0.0, arrays


# ---------------------------------------------------------------- report


def row(label: str, times: List[float], extra: str = "") -> str:
    return f"  {label:<44} {statistics.median(times):7.2f} s {min(times):7.2f} s{extra}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=256, help="sweep size of (b)")
    parser.add_argument("--reps", type=int, default=5, help="alternating pairs of (a)")
    parser.add_argument("--sweep-reps", type=int, default=2, help="alternating pairs of (b)")
    parser.add_argument("--big", type=int, default=1000, help="sweep size of (c); 0 skips it")
    parser.add_argument("--huge", type=int, default=2500, help="sweep size of (d); 0 skips it")
    args = parser.parse_args()
    # As in a user's shell, Python writes bytecode: with PYTHONDONTWRITEBYTECODE (some sandboxes set it)
    # our editable package would recompile every module on every start, the baseline's site-packages not.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if os.geteuid() != 0:
        raise SystemExit("submit_overhead: needs root (the Slurm test cluster runs its daemons as root)")
    with test_cluster() as nodes, down_partition(nodes), tempfile.TemporaryDirectory() as tmp:
        a_ours, a_bare = single_job(Path(tmp), args.reps)
        b_ours, b_exit, b_stock = sweep(Path(tmp), args.members, args.sweep_reps)
        big = ours_only(Path(tmp), args.big, "big") if args.big else None
        huge = ours_only(Path(tmp), args.huge, "huge") if args.huge else None
    print(f"{'':46} {'median':>9} {'min':>9}")
    print(f"(a) one job, command -> sbatch accepted (process wall time), {args.reps} pairs")
    print(row("ours: nemotron.train cluster=slurm_test", a_ours))
    print(row("bare: @hydra.main + submitit.AutoExecutor", a_bare))
    print(f"(b) {args.members}-member sweep, command -> all members in squeue, {args.sweep_reps} pairs")
    print(
        row(
            "ours: nemotron.train -m (job arrays)",
            b_ours,
            f"   (process exit: median {statistics.median(b_exit):.2f} s)",
        )
    )
    print(row("stock: hydra/launcher=submitit_slurm", b_stock))
    if big:
        print(
            f"(c) {args.big}-member sweep, command -> all in squeue: {big[0]:.2f} s (process exit {big[1]:.2f} s, "
            f"{big[2]} array(s)) (target <= 5 s)"
        )
    if huge:
        print(
            f"(d) {args.huge}-member sweep: all {args.huge} accepted in {huge[0]:.2f} s as {huge[2]} arrays "
            f"(split at MaxArraySize)"
        )
    single = statistics.median(a_ours) / statistics.median(a_bare)
    many = statistics.median(b_stock) / statistics.median(b_ours)
    print(f"ratio (a) single job, ours/bare: {single:.2f} (target <= 1.3)")
    print(f"ratio (b) {args.members}-member sweep, stock/ours: {many:.1f}x (target >= 15x)")


if __name__ == "__main__":
    main()
