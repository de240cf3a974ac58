"""`python -m nemotron.jobs resubmit`: a sweep's unfinished members run again with their own task ids,
into their own run dirs; finished members are left alone."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from slurm_support import REPO, cli

pytestmark = pytest.mark.slow

ARRAY = re.compile(r"array (\d+): members")


def jobs_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nemotron.jobs", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)


def test_cancelled_member_is_resubmitted_alone_and_completes(slurm_cluster, wait_for_job, tmp_path):
    sweep = tmp_path / "sweep"
    result = cli("+recipe=gpt/pretrain", "cluster=slurm_test", "tracker=none", "train.steps=3",
                 f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}", "cluster.array_parallelism=1",
                 "-m", "train.seed=1,2,3")
    assert result.returncode == 0, result.stdout + result.stderr
    array_id = ARRAY.search(result.stdout).group(1)
    subprocess.run(["scancel", f"{array_id}_1"], check=True)  # one member lost (a node failure, a mistake)
    for task in (0, 2):  # one at a time (%1): when 2 is done, 1 is long gone (sacct may not list a task
        assert wait_for_job(f"{array_id}_{task}", timeout_s=180) == ("COMPLETED", "0:0")  # cancelled pending)
    listed = jobs_cli("list", "--root", str(tmp_path)).stdout
    assert re.search(rf"^{array_id}_1\s+\S+\s+(CANCELLED|unknown)", listed, re.M), listed

    again = jobs_cli("resubmit", str(sweep))
    assert again.returncode == 0, again.stderr
    new_id = re.search(r"resubmitted sweep member\(s\) 1 as Slurm array (\d+) \(tasks 1\)", again.stdout).group(1)
    assert wait_for_job(f"{new_id}_1", timeout_s=120) == ("COMPLETED", "0:0")
    record = json.loads((sweep / "1" / "slurm_job.json").read_text())
    assert record["job_id"] == f"{new_id}_1" and record["previous_job_ids"] == [f"{array_id}_1"]
    assert "done | 3/3 steps" in (sweep / "1" / "train.log").read_text()
    assert (sweep / "0" / "train.log").read_text().count("done | 3/3 steps") == 1  # not run again
    assert json.loads((sweep / "sweep.json").read_text())["arrays"][0]["resubmits"] == [{"job_id": new_id, "tasks": [1]}]

    nothing = jobs_cli("resubmit", str(sweep))
    assert nothing.returncode == 0 and "nothing to resubmit" in nothing.stdout, nothing.stdout + nothing.stderr
