"""A 2-node x 1-task Slurm job forms a real torch.distributed (gloo) group of 2 and trains."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_two_node_job_trains_data_parallel_across_nodes(slurm_cluster, wait_for_job, tmp_path):
    run_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "nemotron.train", "+recipe=gpt/pretrain", "cluster=slurm_test",
            "resources.nodes=2", "tracker=none", "train.steps=4", "train.log_interval=2",
            f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run_dir}", "cluster.wait=true"]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    job_id = re.search(r"as Slurm job (\d+)", result.stdout).group(1)
    assert wait_for_job(job_id, timeout_s=60) == ("COMPLETED", "0:0")
    nodes = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "NNodes,NodeList"],
                           capture_output=True, text=True).stdout.split("|")
    assert nodes[0] == "2", nodes
    log = (run_dir / "train.log").read_text()
    assert "done | 4/4 steps" in log and "world 2 (TP1 PP1 CP1 EP1 DP2)" in log, log[-2000:]
