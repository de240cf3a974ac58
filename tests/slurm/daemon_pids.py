"""The test cluster's daemons by recorded PID and kernel start time (`<root>/run/<name>.pid`): record
them, tell whether a PID is still ours, stop one (SIGTERM, wait, SIGKILL). Never by name. Used by cluster.py."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from cluster_layout import Layout


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a live process, None if gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return None if fields[0] in "ZX" else (fields[0], fields[19])


def record_pid(lay: Layout, name: str, pid: int) -> None:
    """Save name, PID and kernel start time: a recycled PID is never mistaken for our daemon."""
    start = (_proc_stat(pid) or ("", "?"))[1]
    (lay.run / f"{name}.pid").write_text(f"{pid} {start}\n")


def recorded(lay: Layout) -> dict[str, tuple[int, str]]:
    out = {}
    for f in sorted(lay.run.glob("*.pid")) if lay.run.is_dir() else []:
        pid, start = f.read_text().split()
        out[f.stem] = (int(pid), start)
    return out


def is_ours(pid: int, start: str) -> bool:
    now = _proc_stat(pid)
    return now is not None and now[1] == start


def _reap(pid: int) -> None:
    try:  # our own child (daemons started by this process): collect the zombie
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_pid(name: str, pid: int, start: str, grace_s: float = 10.0) -> str:
    """SIGTERM one recorded daemon, wait up to grace_s, then SIGKILL. Returns what happened."""
    if not is_ours(pid, start):
        return f"{name} ({pid}) already gone"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_ours(pid, start):
            _reap(pid)  # it may have turned zombie just after the first try
            return f"stopped {name} ({pid})"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return f"killed {name} ({pid}) after {grace_s:.0f} s"
