"""Save-on-signal: SIGUSR2 to a training process (or to one rank of two) stops it at a step boundary
with a complete checkpoint and exit status 75, and the rerun resumes there; handlers are restored.

The slow cases start the recipe script as the launchers do (~10 s each, mostly imports) and signal
it by PID once it has printed step 3. The in-process cases use a tracker that signals its own
process at a chosen moment (during setup, right after a regular save).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from omegaconf import OmegaConf

from nemotron.common import exit_codes
from nemotron.runtime.stages import pretrain
from nemotron.runtime.train import loop as train_loop
from nemotron.runtime.checkpoint import store as checkpoint
from nemotron.runtime.train.preemption import Preempted, StopSignals, agreed_signal
from runtime_support import resolved_run_config, run_config, tiny_data_dir  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "recipes" / "gpt" / "pretrain" / "train.py"
STEP = re.compile(r"^step (\d+)/", re.M)


# ---- the handler ---------------------------------------------------------------------------------


def test_stop_signals_records_the_first_signal_then_restores_the_previous_handlers():
    calls: List[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    term_before = signal.getsignal(signal.SIGTERM)
    try:
        with StopSignals() as signals:
            os.kill(os.getpid(), signal.SIGUSR2)
            os.kill(os.getpid(), signal.SIGTERM)
            assert signals.received == signal.SIGUSR2 and calls == []
            assert agreed_signal(signals, world_size=1) is signal.SIGUSR2
        assert signal.getsignal(signal.SIGTERM) == term_before
        os.kill(os.getpid(), signal.SIGUSR2)
        assert calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_stop_signals_outside_the_main_thread_installs_nothing():
    before = signal.getsignal(signal.SIGUSR2)
    seen: Dict[str, object] = {}

    def enter() -> None:
        with StopSignals() as signals:
            seen["handler"], seen["received"] = signal.getsignal(signal.SIGUSR2), signals.received

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert seen == {"handler": before, "received": 0}


# ---- in-process runs signalled by their tracker --------------------------------------------------


class _SignallingTracker:
    """Records closes; sends `signum` to this process when opened (step None) or after logging `step`."""

    signum: int = signal.SIGUSR2
    step: Optional[int] = None
    closed: List[str] = []

    def __init__(self, cfg, rank=0):
        if self.step is None:
            os.kill(os.getpid(), self.signum)

    def log(self, step, metrics):
        if step == self.step and "loss" in metrics:
            os.kill(os.getpid(), self.signum)

    def close(self, status="FINISHED"):
        _SignallingTracker.closed.append(status)


def _signal_at(monkeypatch, signum: int, step: Optional[int]) -> None:
    monkeypatch.setattr(_SignallingTracker, "signum", signum)
    monkeypatch.setattr(_SignallingTracker, "step", step)
    monkeypatch.setattr(_SignallingTracker, "closed", [])
    monkeypatch.setattr(train_loop, "open_tracker", _SignallingTracker)


def test_signal_right_after_a_regular_save_does_not_save_twice(run_config, tmp_path, monkeypatch, capsys):
    _signal_at(monkeypatch, signal.SIGUSR2, step=2)
    ck, handler_before = tmp_path / "ck", signal.getsignal(signal.SIGUSR2)
    with pytest.raises(Preempted) as stopped:
        pretrain.run(run_config("gpt/pretrain", "train.steps=6", "checkpoint.save_interval=2",
                                f"checkpoint.dir={ck}"))

    assert stopped.value.code == exit_codes.PREEMPTED and stopped.value.step == 2
    out = capsys.readouterr().out
    assert "preempted | SIGUSR2 at step 2/6: this step's checkpoint is already saved; exiting " \
           "with 75 so the job can be requeued and resume" in out
    assert out.count("checkpoint saved: ") == 1 and "stopped at step 2 (SIGUSR2) | 2/6 steps" in out
    assert [p.name for p in ck.iterdir()] == ["iter_0000002"] and _SignallingTracker.closed == ["KILLED"]
    assert signal.getsignal(signal.SIGUSR2) == handler_before  # restored after the run


def test_sigterm_during_setup_stops_before_the_first_step(run_config, tmp_path, monkeypatch, capsys):
    _signal_at(monkeypatch, signal.SIGTERM, step=None)
    ck = tmp_path / "ck"
    with pytest.raises(Preempted):
        pretrain.run(run_config("gpt/pretrain", "train.steps=4", f"checkpoint.dir={ck}"))

    out = capsys.readouterr().out
    assert "preempted | SIGTERM at step 0/4: no step trained since setup, nothing new to save" in out
    assert "stopped at step 0 (SIGTERM) | 0/4 steps" in out and "step 1/4" not in out
    assert checkpoint.latest(str(ck)) is None and _SignallingTracker.closed == ["KILLED"]


# ---- the recipe script, signalled by PID (slow) --------------------------------------------------


def _config(data_dir: Path, tmp_path: Path, *overrides: str) -> Path:
    """A resolved config file of a 400-step run (far longer than the tests wait), logging every step."""
    cfg = resolved_run_config(["+recipe=gpt/pretrain", "train.num_threads=1", "tracker=jsonl",
                               f"data.cache_dir={data_dir}", "train.steps=400", "train.log_interval=1",
                               *overrides], tmp_path / "run")
    OmegaConf.save(cfg, tmp_path / "resolved.yaml")
    return tmp_path / "resolved.yaml"


def _start(config: Path, log: Path, rank_env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **(rank_env or {})}
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, str(SCRIPT), "--config", str(config)], cwd=REPO,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_for_step(proc: subprocess.Popen, log: Path, step: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = STEP.findall(log.read_text())
        if done and int(done[-1]) >= step:
            return
        assert proc.poll() is None, f"exited with {proc.returncode} before step {step}:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)
    raise AssertionError(f"no step {step} within {timeout_s} s:\n{log.read_text()[-3000:]}")


def _finish(proc: subprocess.Popen, log: Path, timeout_s: float = 120) -> Tuple[int, str]:
    try:
        return proc.wait(timeout=timeout_s), log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stopped_step(out: str) -> int:
    (line,) = [x for x in out.splitlines() if x.startswith("preempted | ")]
    found = re.fullmatch(r"preempted \| SIGUSR2 at step (\d+)/400: checkpoint saved in [\d.]+ s; "
                         r"exiting with 75 so the job can be requeued and resume", line)
    assert found, line
    return int(found.group(1))


@pytest.mark.slow
def test_sigusr2_saves_the_step_exits_75_and_the_rerun_resumes_there(tiny_data_dir, tmp_path):
    config = _config(tiny_data_dir, tmp_path)
    cfg = OmegaConf.load(config)
    proc = _start(config, tmp_path / "first.log")
    try:
        _wait_for_step(proc, tmp_path / "first.log", 3)
        os.kill(proc.pid, signal.SIGUSR2)
    finally:
        code, out = _finish(proc, tmp_path / "first.log")

    assert code == exit_codes.PREEMPTED, out[-3000:]
    step = _stopped_step(out)
    assert step >= 3 and f"stopped at step {step} (SIGUSR2) | {step}/400 steps" in out
    assert "Traceback" not in out
    found = checkpoint.latest(cfg.checkpoint.dir)
    assert found.step == step and Path(found.path).name == f"iter_{step:07d}"

    cfg.train.steps = step + 3  # the requeued job, made short
    OmegaConf.save(cfg, config)
    code, out = _finish(_start(config, tmp_path / "rerun.log"), tmp_path / "rerun.log")
    assert code == 0, out[-3000:]
    assert f"done | {step + 3}/{step + 3} steps (resumed at {step})" in out
    records = [json.loads(x) for x in (Path(cfg.run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records if "status" in r] == ["KILLED", "FINISHED"]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, step + 4))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_only_rank_1_signalled_both_ranks_stop_at_the_same_step(tiny_data_dir, tmp_path):
    config = _config(tiny_data_dir, tmp_path)
    common = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
              "MASTER_PORT": str(_free_port())}
    logs = [tmp_path / f"rank{rank}.log" for rank in (0, 1)]
    procs = [_start(config, logs[rank], {**common, "RANK": str(rank), "LOCAL_RANK": str(rank)})
             for rank in (0, 1)]
    try:
        _wait_for_step(procs[0], logs[0], 3)
        os.kill(procs[1].pid, signal.SIGUSR2)  # rank 0 is never signalled
    finally:
        (code0, out0), (code1, out1) = [_finish(p, log) for p, log in zip(procs, logs)]

    assert (code0, code1) == (75, 75), out0[-2000:] + out1[-2000:]
    step = _stopped_step(out0)  # rank 0 learnt of rank 1's signal through the all_reduce
    assert f"stopped at step {step} (SIGUSR2) | {step}/400 steps" in out0
    ck = Path(OmegaConf.load(config).checkpoint.dir)
    assert [p.name for p in ck.iterdir()] == [f"iter_{step:07d}"]  # one save, no leftover .tmp-
    assert checkpoint.latest(str(ck)).step == step
