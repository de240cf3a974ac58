"""Members to Slurm jobs through submitit: grouped by job shape, split at the array limit, submitted.

The one submission path: a plain run is a launch of one member (one job, its script `job.sbatch` in
the run dir), a sweep one job array per group of members whose jobs are the same except for the run
directory (scripts `array_<k>.sbatch` in the sweep dir). Members that ask for different resources get
their own arrays; an array never holds more members than `cluster.max_array_size` or the cluster's
MaxArraySize. Each group is one submitit SlurmExecutor (`submitit_compat.Executor`); each member is a
`task.RankTask`, the small callable submitit pickles. Records: `slurm_job.json` per member (job id,
`<array>_<i>` in an array), `sweep.json` per sweep; `python -m nemotron.jobs` reads them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from nemotron.common.atomic_files import write_json_atomic, write_text_atomic
from nemotron.launchers import records, scheduler
from nemotron.launchers.script import RUN_DIR_MARK, SUBMITIT_DIR, JobParts, job_params
from nemotron.launchers.submitit_compat import Executor, make_executor
from nemotron.launchers.task import RankTask


@dataclass
class MemberJob:
    """What a member contributes to an array: its resolved config and its job."""

    num: int
    """hydra.job.num (0 for a plain run)."""
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
    label: str = ""
    """JSON {num, overrides: the swept values}: what a sweep member's tracker run is called; "" for a plain run."""

    def task(self) -> RankTask:
        """The callable submitit pickles for this member: its run dir and the recipe command."""
        argv = [a.replace(RUN_DIR_MARK, str(self.run_dir)) for a in self.parts.argv]
        return RankTask(str(self.run_dir), argv, self.parts.max_requeues)


@dataclass
class SweepArray:
    """One sbatch submission: a plain job (one member) or a job array."""

    members: List[MemberJob]
    """The members, task i = members[i]."""
    executor: Executor
    """submitit's executor with this job's parameters."""
    script: str
    """The exact script sbatch receives (submitit's rendering)."""
    script_path: Path
    """Where a copy is kept (the record names it; `jobs resubmit` submits it again)."""
    job_id: Optional[str] = None
    """The job's (array's) id once submitted."""
    task_ids: Optional[List[str]] = None
    """Each member's job id once submitted (`<array>_<i>`, or the job id of a plain run)."""

    @property
    def folder(self) -> Path:
        return Path(self.executor.folder)


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


def plan_job(
    chunk: List[MemberJob], base_dir: Path, script_path: Path, parallelism: Optional[int], where: str, array: bool
) -> SweepArray:
    """One submitit executor (job shape) and its exact script for `chunk` (a job array when `array`)."""
    parts = chunk[0].parts
    params = job_params(parts, [m.run_dir for m in chunk], [m.label for m in chunk], where, array)
    if array:
        params["array_parallelism"] = parallelism or len(chunk)
    executor = make_executor(base_dir / SUBMITIT_DIR, params, parts.max_requeues, parts.python, array)
    return SweepArray(
        members=chunk, executor=executor, script=executor.script_text(len(chunk)), script_path=script_path
    )


def plan_plain(member: MemberJob, name: str, cluster: str) -> SweepArray:
    """A plain run: one job, files in its run dir."""
    where = f"{name} on cluster={cluster}: written by python -m nemotron.train, submitted through submitit"
    return plan_job([member], member.run_dir, member.run_dir / "job.sbatch", None, where, array=False)


def plan_arrays(
    members: List[MemberJob], sweep_dir: Path, limit: int, parallelism: Optional[int], name: str, cluster: str
) -> List[SweepArray]:
    """Group members by job shape (first-seen order), split each group into chunks of at most `limit`."""
    groups: Dict[tuple, List[MemberJob]] = {}
    for member in members:
        groups.setdefault(member.parts.key(), []).append(member)
    chunks = [group[i : i + limit] for group in groups.values() for i in range(0, len(group), limit)]
    arrays = []
    for k, chunk in enumerate(chunks):
        where = (
            f"{name} on cluster={cluster}: array {k + 1} of {len(chunks)}: sweep members "
            f"{span([m.num for m in chunk])} of {sweep_dir}; written by python -m nemotron.train -m"
        )
        arrays.append(plan_job(chunk, sweep_dir, sweep_dir / f"array_{k}.sbatch", parallelism, where, array=True))
    return arrays


def describe(arrays: List[SweepArray], members: bool = True) -> str:
    """What a dry run prints: each member's overrides and run dir, then each job's exact script."""
    lines = []
    for array in arrays if members else []:
        for m in array.members:
            lines.append(f"# member {m.num}: {' '.join(m.overrides)} -> {m.run_dir}")
    for array in arrays:
        lines.append(f"# would submit: sbatch --parsable {array.script_path} ({len(array.members)} members)")
        lines.append(array.script.rstrip("\n"))
    return "\n".join(lines) + "\n"


def submit_array(array: SweepArray) -> None:
    """sbatch one job through submitit; keep the script it received and every member's job id."""
    jobs = array.executor.submit_array([m.task() for m in array.members])
    array.task_ids = [job.job_id for job in jobs]
    array.job_id = array.task_ids[0].split("_")[0]
    submitted = array.executor.submitted_scripts[-1]
    assert submitted == array.script, "submitit rendered a different script than planned"
    write_text_atomic(array.script_path, submitted)  # `jobs resubmit` sbatches it again


WRITERS = 8
"""Threads writing a sweep's member files. Each file is still written whole and durably on its own
(temp file, fsync, rename, fsync of its directory); the threads only overlap those waits, which are most of
a submit's time after composing (2,500 members: ~11 s of ~12 s on the 2-core test VM, docs/scale.md)."""


def write_each(write: Callable[[Any], None], items: List[Any]) -> None:
    """`write(item)` for every item, on up to WRITERS threads; the first error is raised."""
    if len(items) < 2:
        for item in items:
            write(item)
        return
    with ThreadPoolExecutor(min(WRITERS, len(items))) as pool:
        list(pool.map(write, items))


def submit_arrays(arrays: List[SweepArray], code: Dict[str, Any], sweep_dir: Optional[Path] = None) -> None:
    """Write every member's files, then submit each job, then record the ids (members, and the sweep).

    Nothing is submitted unless every member's config (and secrets) is written. The records follow the
    last sbatch, so no array waits for another's records; when sbatch refuses an array, the arrays it
    accepted before are still recorded (`jobs` finds them) and the refusal is raised."""
    members = [m for a in arrays for m in a.members]
    write_each(lambda m: records.write_member(m.run_dir, m.resolved_yaml, m.parts.secrets), members)
    try:
        for array in arrays:
            submit_array(array)
    finally:
        record_members([a for a in arrays if a.task_ids], code, sweep_dir)
    if sweep_dir is not None:
        sweep = {
            "sweep_dir": str(sweep_dir),
            **code,
            "arrays": [
                {
                    "job_id": a.job_id,
                    "script": str(a.script_path),
                    "submitit_folder": str(a.folder),
                    "members": [{"num": m.num, "run_dir": str(m.run_dir), "overrides": m.overrides} for m in a.members],
                }
                for a in arrays
            ],
        }
        write_json_atomic(sweep_dir / "sweep.json", sweep)


def record_members(arrays: List[SweepArray], code: Dict[str, Any], sweep_dir: Optional[Path]) -> None:
    """`slurm_job.json` of every member of the submitted `arrays` (its job id `<array>_<i>`)."""
    jobs = [(a, m, job_id) for a in arrays for m, job_id in zip(a.members, a.task_ids or [], strict=True)]

    def write(job: tuple) -> None:
        array, m, job_id = job
        extra = {"sweep_dir": str(sweep_dir), "overrides": m.overrides} if sweep_dir else {}
        record = records.job_record(
            m.record, job_id, m.run_dir, array.script_path, submitit_folder=str(array.folder), **extra, **code
        )
        records.write_record(m.run_dir, record)

    write_each(write, jobs)


def submitted_message(arrays: List[SweepArray], sweep_dir: Path, output_root: str) -> str:
    """Array ids, member ranges, where the logs are and how to follow them."""
    total = sum(len(a.members) for a in arrays)
    lines = [f"submitted {total} sweep member(s) as {len(arrays)} Slurm job array(s)"]
    for a in arrays:
        lines.append(
            f"  array {a.job_id}: members {span([m.num for m in a.members])} "
            f"({len(a.members)} tasks), script {a.script_path}"
        )
    first = (arrays[0].task_ids or [arrays[0].job_id])[0]
    lines += [
        f"  sweep dir: {sweep_dir} (member i in {sweep_dir}/<subdir>, log train.log)",
        f"  follow:    python -m nemotron.jobs follow {first}",
        f"  state:     python -m nemotron.jobs list --root {output_root}    "
        f"cancel: scancel {' '.join(str(a.job_id) for a in arrays)}",
    ]
    return "\n".join(lines)
