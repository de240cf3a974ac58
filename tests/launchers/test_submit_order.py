"""arrays.submit_arrays without Slurm: every member's config is written before the first sbatch, the
records after the last one, and the arrays sbatch accepted before a refusal are still recorded.

A stand-in replaces `submit_array` (sbatch) here: it records what is on disk at each submission and
refuses the second array, which the test cluster cannot be made to do on cue. The real submissions
are tested on the test cluster in tests/slurm_launch/test_sweeps.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import pytest

from nemotron.launchers import arrays, records, scheduler
from nemotron.launchers.arrays import MemberJob, SweepArray
from nemotron.launchers.script import JobParts


def member(tmp_path: Path, num: int) -> MemberJob:
    parts = JobParts(params={}, argv=["train"], python="python", max_requeues=0)
    return MemberJob(num, [f"optim.lr={num}"], tmp_path / str(num), f"n: {num}\n", parts, {"recipe": "r"})


def array(tmp_path: Path, members: List[MemberJob], k: int) -> SweepArray:
    class Folder:  # SweepArray.folder reads executor.folder only
        folder = str(tmp_path / "submitit")

    return SweepArray(members, Folder(), "script", tmp_path / f"array_{k}.sbatch")  # type: ignore[arg-type]


def test_configs_first_records_last_and_kept_on_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = [member(tmp_path, i) for i in range(3)]
    second = [member(tmp_path, i) for i in range(3, 5)]
    plan = [array(tmp_path, first, 0), array(tmp_path, second, 1)]
    seen = []

    def fake_submit(a: SweepArray) -> None:
        every = [m for p in plan for m in p.members]
        seen.append(all((m.run_dir / "config.yaml").is_file() for m in every))
        seen.append(any((m.run_dir / records.RECORD).exists() for m in every))
        if a is plan[1]:
            raise scheduler.SchedulerError("sbatch refused the job (array_1.sbatch): QOSMaxSubmitJobPerUserLimit")
        a.task_ids, a.job_id = [f"7_{i}" for i in range(len(a.members))], "7"

    monkeypatch.setattr(arrays, "submit_array", fake_submit)
    with pytest.raises(scheduler.SchedulerError):
        arrays.submit_arrays(plan, {"code": None}, tmp_path)
    assert seen == [True, False, True, False]  # configs before each sbatch, no record before the last
    for i, m in enumerate(first):
        record = json.loads((m.run_dir / records.RECORD).read_text())
        assert record["job_id"] == f"7_{i}" and record["overrides"] == [f"optim.lr={i}"]
    assert not any((m.run_dir / records.RECORD).exists() for m in second)
    assert not (tmp_path / "sweep.json").exists()  # the sweep record names only a sweep submitted whole
