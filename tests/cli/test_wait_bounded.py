"""launchers/wait.py and scheduler parsing without a cluster: a wait with no Slurm to ask ends after
its grace (state UNKNOWN, exit 1, the reason); sacct's lines for array tasks that never started expand."""

from __future__ import annotations

import time

from nemotron.launchers.scheduler import expand_task_ids, query_ids
from nemotron.launchers.wait import UNKNOWN, exit_code_of, wait


def test_array_ranges_expand_to_task_ids():
    assert expand_task_ids("12_[0-2,5%4]") == ["12_0", "12_1", "12_2", "12_5"]
    assert expand_task_ids("12_3") == ["12_3"] and expand_task_ids("12") == ["12"]
    assert query_ids(["12_3", "12_4", "13"]) == ["12_3", "12_4", "13", "12"]


def test_exit_code_of_a_job():
    assert exit_code_of("COMPLETED", "0:0") == 0 and exit_code_of("FAILED", "3:0") == 3
    assert exit_code_of("CANCELLED", "0:15") == 1 and exit_code_of("FAILED", "") == 1


def test_a_wait_with_nobody_answering_ends_after_its_grace(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no sacct, no squeue: every query answers nothing
    seen = []
    start = time.monotonic()
    ended = wait(["123", "124_1"], poll_s=0.05, grace_s=0.5, on_end=seen.append)
    assert 0.5 <= time.monotonic() - start < 5
    assert {e.job_id for e in seen} == {"123", "124_1"} and all(e.state == UNKNOWN and e.code == 1 for e in seen)
    assert "neither sacct nor squeue has known Slurm job 123 for 0.5 s" in ended["123"].why
    assert "sacct does not answer" in ended["123"].why
