"""The one module that runs Slurm's commands: sbatch, sacct, squeue, sinfo, scontrol, scancel.

Every call gets the same timeout (`TIMEOUT_S`) and the same environment (`nemotron.common.environ.child_environ`:
the user's, without the switches our entry point set for itself). A command that is missing, fails or
hangs answers None (state queries) or raises `SchedulerError` with Slurm's own reason in one line
(sbatch, scancel), so no caller can hang on a daemon that stopped answering. Standard library only.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from nemotron.common.environ import child_environ

TIMEOUT_S = 20
"""Longest any Slurm command may take; past it the command counts as not answering."""
DEFAULT_MAX_ARRAY_SIZE = 1001
"""Slurm's default MaxArraySize, used when `scontrol show config` does not answer."""
ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SUSPENDED",
        "STAGE_OUT",
        "SIGNALING",
    }
)
"""Slurm states of a job that has not ended yet (a requeued job passes through REQUEUED)."""


class SchedulerError(Exception):
    """Slurm refused or did not answer a command that changes something (sbatch, scancel): one line."""


@dataclass(frozen=True)
class JobState:
    """What Slurm says about one job (or array task)."""

    state: str
    """Slurm's state name (first word: `CANCELLED by 0` -> `CANCELLED`)."""
    exit_code: str = ""
    """`code:signal` from sacct; "" when only squeue answered."""
    elapsed: str = ""
    """Run time so far or in total."""
    source: str = "sacct"
    """Which command answered: `sacct` or `squeue`."""


def run(argv: List[str]) -> Optional[str]:
    """stdout of a Slurm command, or None when it is missing, fails or hangs past TIMEOUT_S."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, env=child_environ(), timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def act(argv: List[str], what: str) -> str:
    """Run a command that changes something; its stdout, or a SchedulerError with Slurm's last line."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, env=child_environ(), timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SchedulerError(f"{what}: {err}") from err
    if out.returncode != 0:
        reason = (out.stderr.strip() or out.stdout.strip()).splitlines()
        raise SchedulerError(f"{what}: {reason[-1] if reason else f'exit {out.returncode}'}")
    return out.stdout


# ---------------------------------------------------------------- changing things


def sbatch(script: Path, *options: str) -> str:
    """`sbatch --parsable [options] script` -> the job id."""
    out = act(["sbatch", "--parsable", *options, str(script)], f"sbatch refused the job ({script})")
    return out.strip().split(";")[0]


def scancel(job_id: str) -> None:
    """Cancel a job, an array or one array task."""
    act(["scancel", job_id], f"scancel {job_id} failed")


# ---------------------------------------------------------------- job states


def expand_task_ids(job_id: str) -> List[str]:
    """`12_[0-2,5%4]` -> 12_0, 12_1, 12_2, 12_5 (how sacct lists array tasks that never started)."""
    found = re.fullmatch(r"(\d+)_\[([^\]]+)\]", job_id)
    if not found:
        return [job_id]
    base, spec = found.group(1), found.group(2).split("%")[0]
    ids = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            ids += [f"{base}_{t}" for t in range(int(first), int(last or first) + 1)]
    return ids


def query_ids(ids: Iterable[str]) -> List[str]:
    """The ids to ask sacct about: each id, and an array task's array (tasks that never started are
    only listed under the array, as `<array>_[i-j]`)."""
    out = dict.fromkeys(ids)
    out.update(dict.fromkeys(i.split("_")[0] for i in ids if "_" in i))
    return list(out)


def sacct_states(ids: List[str]) -> Optional[Dict[str, JobState]]:
    """job id -> state from one sacct call; None when sacct (the accounting daemon) does not answer."""
    out = run(["sacct", "-n", "-X", "-P", "-j", ",".join(query_ids(ids)), "-o", "JobID,State,ExitCode,Elapsed"])
    if out is None:
        return None
    states: Dict[str, JobState] = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) >= 4 and parts[1]:
            for job_id in expand_task_ids(parts[0]):
                states[job_id] = JobState(parts[1].split()[0], parts[2], parts[3])
    return states


def squeue_states(ids: List[str]) -> Dict[str, JobState]:
    """job id -> state for jobs slurmctld still holds (ended ones for MinJobAge); one line per task."""
    out = run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(query_ids(ids)), "-o", "%i|%T|%M"]) or ""
    rows = (ln.split("|") for ln in out.splitlines())
    return {p[0]: JobState(p[1], "", p[2], source="squeue") for p in rows if len(p) == 3}


def known_states(ids: List[str]) -> Tuple[Dict[str, JobState], bool]:
    """(job id -> state for the ids Slurm knows, whether sacct answered): sacct, then squeue for the rest."""
    if not ids:
        return {}, True
    from_sacct = sacct_states(ids)
    known = {i: s for i, s in (from_sacct or {}).items() if i in ids}
    missing = [i for i in ids if i not in known]
    if missing:
        known.update({i: s for i, s in squeue_states(missing).items() if i in missing})
    return known, from_sacct is not None


# ---------------------------------------------------------------- the cluster


def partitions() -> Optional[Dict[str, Dict[str, int]]]:
    """partition -> {node: GPUs} from `sinfo` (the default partition also under "*"); None if no answer."""
    out = run(["sinfo", "-h", "-N", "-o", "%P|%N|%G"])
    if out is None:
        return None
    parts: Dict[str, Dict[str, int]] = {}
    for line in out.splitlines():
        if line.count("|") != 2:
            continue
        part, node, gres = line.split("|")
        gpus = sum(int(n) for n in re.findall(r"gpu(?::[^:,(]+)?:(\d+)", gres))
        for key in {part.rstrip("*"), "*" if part.endswith("*") else part.rstrip("*")}:
            parts.setdefault(key, {})[node] = gpus
    return parts


def max_array_size() -> int:
    """MaxArraySize from `scontrol show config` (Slurm's default 1001 when it does not answer)."""
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", run(["scontrol", "show", "config"]) or "", re.M)
    return int(found.group(1)) if found else DEFAULT_MAX_ARRAY_SIZE
