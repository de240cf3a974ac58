"""A sweep's members as Slurm job arrays: grouped by job shape, split at the array limit, submitted.

Members whose jobs look the same (same #SBATCH options and the same body — they differ only in their
run directory) share one array; members that ask for different resources get their own arrays, so a
sweep may vary `resources.nodes` or `cluster.partition`. An array never holds more members than
`cluster.max_array_size` or the cluster's MaxArraySize allow. Task i of an array runs in the i-th
run directory its script lists and appends to that run's `train.log`; each member gets a
`slurm_job.json` (job id `<array>_<i>`) for `python -m nemotron.jobs`, the sweep a `sweep.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from nemotron.launchers import scheduler, slurm
from nemotron.launchers.script import JobParts, array_script



@dataclass
class MemberJob:
    """What a member contributes to an array: its resolved config and its job."""

    num: int
    """hydra.job.num."""
    overrides: List[str]
    """The member's overrides (shown in records and dry runs)."""
    run_dir: Path
    """The member's run directory."""
    resolved_yaml: str
    """config.yaml, resolved at submission."""
    parts: JobParts
    """Its job; members with equal `parts.key()` share an array."""
    record: Dict[str, Any]
    """Recipe, cluster and partition for its slurm_job.json."""
    label: str = "{}"
    """JSON {num, overrides: the swept values}: what the member's tracker run is called."""


@dataclass
class SweepArray:
    """One `sbatch --array` submission."""

    members: List[MemberJob]
    """The members, task i = members[i]."""
    script: str
    """The exact script sbatch receives."""
    script_path: Path
    """Where it is written."""
    job_id: Optional[str] = None
    """The array's job id once submitted."""


def span(nums: List[int]) -> str:
    """'0, 2, 5..9' for a sorted list of member numbers."""
    runs: List[List[int]] = []
    for n in nums:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)


def array_limit(configured: Optional[int]) -> int:
    """Most members per array: the smaller of cluster.max_array_size and the cluster's MaxArraySize."""
    limit = scheduler.max_array_size()
    return max(1, min(limit, configured) if configured else limit)


def plan_arrays(members: List[MemberJob], sweep_dir: Path, limit: int, parallelism: Optional[int],
                name: str, cluster: str) -> List[SweepArray]:
    """Group members by job shape (first-seen order), split each group into chunks of at most `limit`."""
    groups: Dict[tuple, List[MemberJob]] = {}
    for member in members:
        groups.setdefault(member.parts.key(), []).append(member)
    chunks = [group[i:i + limit] for group in groups.values() for i in range(0, len(group), limit)]
    arrays = []
    for k, chunk in enumerate(chunks):
        where = f"array {k + 1} of {len(chunks)}: sweep members {span([m.num for m in chunk])} of {sweep_dir}"
        script = array_script(name, cluster, chunk[0].parts, [m.run_dir for m in chunk], sweep_dir / "slurm",
                              parallelism, where, [m.label for m in chunk])
        arrays.append(SweepArray(members=chunk, script=script, script_path=sweep_dir / f"array_{k}.sbatch"))
    return arrays


def describe(arrays: List[SweepArray]) -> str:
    """What a dry run prints: each member's overrides and run dir, then each array's exact script."""
    lines = []
    for array in arrays:
        for m in array.members:
            lines.append(f"# member {m.num}: {' '.join(m.overrides)} -> {m.run_dir}")
    for array in arrays:
        lines.append(f"# would submit: sbatch --parsable {array.script_path} ({len(array.members)} members)")
        lines.append(array.script.rstrip("\n"))
    return "\n".join(lines) + "\n"


def write_member(member: MemberJob) -> None:
    """The member's resolved config (and 0600 secrets) in its run directory."""
    member.run_dir.mkdir(parents=True, exist_ok=True)
    (member.run_dir / "config.yaml").write_text(member.resolved_yaml, encoding="utf-8")
    if member.parts.secrets:
        slurm.write_secrets(member.run_dir / "secrets.env", member.parts.secrets)


def submit_arrays(arrays: List[SweepArray], sweep_dir: Path, code: Dict[str, Any]) -> None:
    """Write every member's files, then sbatch each array and record the ids (members and sweep)."""
    (sweep_dir / "slurm").mkdir(parents=True, exist_ok=True)
    for array in arrays:
        for member in array.members:
            write_member(member)
    for array in arrays:
        array.script_path.write_text(array.script, encoding="utf-8")
        array.job_id = slurm.sbatch(array.script_path)
        for i, m in enumerate(array.members):
            record = {**slurm.job_record(m.record, f"{array.job_id}_{i}", m.run_dir, array.script_path),
                      "sweep_dir": str(sweep_dir), "overrides": m.overrides, **code}
            (m.run_dir / "slurm_job.json").write_text(json.dumps(record, indent=1) + "\n")
    sweep = {"sweep_dir": str(sweep_dir), **code, "arrays": [
        {"job_id": a.job_id, "script": str(a.script_path),
         "members": [{"num": m.num, "run_dir": str(m.run_dir), "overrides": m.overrides} for m in a.members]}
        for a in arrays]}
    (sweep_dir / "sweep.json").write_text(json.dumps(sweep, indent=1) + "\n")


def submitted_message(arrays: List[SweepArray], sweep_dir: Path, output_root: str) -> str:
    """Array ids, member ranges, where the logs are and how to follow them."""
    total = sum(len(a.members) for a in arrays)
    lines = [f"submitted {total} sweep member(s) as {len(arrays)} Slurm job array(s)"]
    for a in arrays:
        lines.append(f"  array {a.job_id}: members {span([m.num for m in a.members])} "
                     f"({len(a.members)} tasks), script {a.script_path}")
    lines += [f"  sweep dir: {sweep_dir} (member i in {sweep_dir}/<subdir>, log train.log)",
              f"  follow:    python -m nemotron.jobs follow {arrays[0].job_id}_0",
              f"  state:     python -m nemotron.jobs list --root {output_root}    "
              f"cancel: scancel {' '.join(str(a.job_id) for a in arrays)}"]
    return "\n".join(lines)
