"""No training process outlives the `nemotron.train` that started it, even when that is SIGKILLed.

A long local run (one rank, and two ranks under torch.distributed.run) that prints nothing once it
trains (so no broken pipe stops it for us) is started; once it has trained a few steps, the
launcher is killed with SIGKILL and every process it had started (recorded by PID before the kill)
must be gone within a few seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 20


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("ranks", [1, 2])
def test_sigkill_of_the_launcher_stops_its_training_processes(ranks, tmp_path):
    argv = [
        sys.executable,
        "-m",
        "nemotron.train",
        "+recipe=gpt/pretrain",
        "train.steps=100000",
        "train.log_interval=100000",
        "tracker=none",
        "checkpoint.save_at_end=false",
        "train.num_threads=1",
        f"resources.procs_per_node={ranks}",
        f"paths.output_root={tmp_path}",
    ]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    launcher = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list = []
    try:
        processes = ranks + (ranks > 1)  # the ranks, and torch.distributed.run above them

        assert wait_for(lambda: len(psutil.Process(launcher.pid).children(recursive=True)) >= processes, 120)
        time.sleep(15)  # imports, setup, then silent training steps
        children = psutil.Process(launcher.pid).children(recursive=True)
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        assert wait_for(
            lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children), GONE_WITHIN_S
        ), [c.pid for c in children]
    finally:  # by the PIDs recorded above: orphans are no longer our children
        if launcher.poll() is None:
            launcher.kill()
        for child in children:
            if child.is_running():
                child.kill()
