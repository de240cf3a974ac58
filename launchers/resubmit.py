"""Resubmit what did not finish, into the same directories: runs and sweep members resume from their
last checkpoint, with the config and code frozen when they were first submitted.

    python -m nemotron.jobs resubmit <sweep dir>   # the members that are not COMPLETED (and not still queued)
    python -m nemotron.jobs resubmit <run dir>     # one run's job.sbatch again, unless it COMPLETED

A sweep's members keep their numbers: the array's own script (the one submitit rendered at the first
submit) is submitted again with `sbatch --array=<their task ids>` (its `%N` cap kept), so task i still
runs in the i-th run directory the script lists; each task's pickled `RankTask` is copied to the name
submitit's job runner looks for under the new job id (the same paths, so it resumes). Records are
updated (`slurm_job.json` gets the new id and keeps the old ones, `sweep.json` lists each resubmission).
Standard library only (plus submitit's file naming, for the copy).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Dict, List, Tuple

from nemotron.common.atomic_files import write_json_atomic
from nemotron.launchers.job_records import RECORD, Job, JobsError, fill_states
from nemotron.launchers.scheduler import ACTIVE_STATES, sbatch

SWEEP_RECORD = "sweep.json"
"""What a sweep submit writes into the sweep directory."""
FINISHED_OK = "COMPLETED"


def update_record(run_dir: Path, job_id: str) -> None:
    """The run's record names the new job and keeps the ids it had before."""
    path = run_dir / RECORD
    record = json.loads(path.read_text())
    record["previous_job_ids"] = [*record.get("previous_job_ids", []), record["job_id"]]
    record.update(job_id=job_id, resubmitted_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_json_atomic(path, record)


def states(run_dirs: List[Path]) -> Dict[Path, Job]:
    """Each run's recorded job with its Slurm state."""
    jobs = {d: Job.from_record(d / RECORD) for d in run_dirs}
    fill_states(list(jobs.values()))
    return jobs


def resubmit_run(run_dir: Path) -> str:
    """One run: sbatch its job.sbatch again unless it completed or is still queued."""
    job = states([run_dir])[run_dir]
    if job.state == FINISHED_OK or job.state in ACTIVE_STATES:
        raise JobsError(f"{run_dir}: job {job.job_id} is {job.state}; nothing to resubmit")
    new = sbatch(run_dir / "job.sbatch")
    carry_task(json.loads((run_dir / RECORD).read_text()), job.job_id, new)
    update_record(run_dir, new)
    return f"resubmitted {run_dir} ({job.state} as job {job.job_id}) as Slurm job {new}; it resumes from its checkpoint"


def carry_task(record: dict, old_id: str, new_id: str) -> None:
    """The task submitit pickled for `old_id`, under the name the job runner of `new_id` waits for."""
    from nemotron.launchers.submitit_compat import submitted_pickle

    folder = Path(record["submitit_folder"])
    shutil.copyfile(submitted_pickle(folder, old_id), submitted_pickle(folder, new_id))


def cap_of(script: Path) -> str:
    """The `%N` of the script's own `#SBATCH --array=...%N`, or ''."""
    found = re.search(r"^#SBATCH --array=\S*?(%\d+)\s*$", script.read_text(), re.M)
    return found.group(1) if found else ""


def unfinished(array: dict) -> Tuple[List[int], List[str]]:
    """Task ids of an array's members to resubmit, and lines about members still queued."""
    run_dirs = [Path(m["run_dir"]) for m in array["members"]]
    jobs, tasks, busy = states(run_dirs), [], []
    for task, run_dir in enumerate(run_dirs):
        job = jobs[run_dir]
        if job.state in ACTIVE_STATES:
            busy.append(f"  member {array['members'][task]['num']} ({job.job_id}) is {job.state}: left alone")
        elif job.state != FINISHED_OK:
            tasks.append(task)
    return tasks, busy


def resubmit_sweep(sweep_dir: Path) -> str:
    """Every array's unfinished members, with their own task ids, as one new array each."""
    sweep = json.loads((sweep_dir / SWEEP_RECORD).read_text())
    lines: List[str] = []
    for array in sweep["arrays"]:
        tasks, busy = unfinished(array)
        lines += busy
        if not tasks:
            continue
        script = Path(array["script"])
        new = sbatch(script, f"--array={','.join(map(str, tasks))}{cap_of(script)}")
        for task in tasks:
            run_dir = Path(array["members"][task]["run_dir"])
            old = json.loads((run_dir / RECORD).read_text())["job_id"]
            carry_task(array, old, f"{new}_{task}")
            update_record(run_dir, f"{new}_{task}")
        array.setdefault("resubmits", []).append({"job_id": new, "tasks": tasks})
        nums = ", ".join(str(array["members"][t]["num"]) for t in tasks)
        lines.append(f"resubmitted sweep member(s) {nums} as Slurm array {new} (tasks {','.join(map(str, tasks))})")
    write_json_atomic(sweep_dir / SWEEP_RECORD, sweep)
    if not any(line.startswith("resubmitted") for line in lines):
        lines.append(f"{sweep_dir}: every member is COMPLETED or still queued; nothing to resubmit")
    return "\n".join(lines)


def resubmit(target: Path) -> str:
    """A sweep directory or a run directory."""
    if (target / SWEEP_RECORD).is_file():
        return resubmit_sweep(target)
    if (target / RECORD).is_file():
        return resubmit_run(target)
    raise JobsError(f"{target}: neither a sweep directory ({SWEEP_RECORD}) nor a Slurm run directory ({RECORD})")
