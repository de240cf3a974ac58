"""Turn a validated config into the exact command lines of a local run, print them or run them.

The recipe script runs in its own process (or one per rank through PyTorch's elastic launcher,
`torch.distributed.run`), reading the resolved config this module wrote into the run directory.
This process never imports torch: it composes, validates, writes files and waits.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from nemotron.common.environ import child_environ
from nemotron.common.topology import ranks_per_node
from nemotron.config.validate import ConfigError
from nemotron.launchers.terminal import TerminalFilter
from nemotron.tracking.secrets import redact

DEFAULT_CMD = "python {script} --config {config}"
"""Per-process command when the runspec gives no `run.cmd`."""
STOP_GRACE_S = 20
"""Seconds a training process gets to exit after Ctrl-C before it is killed."""


@dataclass
class LaunchPlan:
    """Everything needed to start a run: command line, extra environment, files."""

    argv: List[str]
    """The command line, first element an executable."""
    env: Dict[str, str] = field(default_factory=dict)
    """Variables added to the caller's environment (runspec env, then cluster env)."""
    log_path: Path = Path("train.log")
    """Where the run's combined stdout/stderr is written."""
    secret_names: List[str] = field(default_factory=list)
    """Names `cluster.secret_names` adds to the secret rule (hidden by describe)."""

    def describe(self, redact_secrets: bool = False) -> str:
        """Shell lines that reproduce the run (secret-named variables hidden when asked)."""
        env = redact(self.env, names=self.secret_names) if redact_secrets else self.env
        lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())]
        return "\n".join([*lines, shlex.join(self.argv)])


def process_argv(cfg: Any, config_path: Path) -> List[str]:
    """One rank's command line from the runspec `cmd` template (placeholders {script}, {config})."""
    template = cfg.recipe.cmd or DEFAULT_CMD
    text = template.replace("{script}", shlex.quote(cfg.recipe.script))
    argv = shlex.split(text.replace("{config}", shlex.quote(str(config_path))))
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def plan_local(cfg: Any, config_path: Path) -> LaunchPlan:
    """The command line for cluster=local: the script directly, or under torchrun for >1 rank."""
    launch = getattr(cfg.recipe.launch, "name", cfg.recipe.launch)
    ranks = ranks_per_node(cfg)
    argv = process_argv(cfg, config_path)
    if launch == "ray":
        raise ConfigError("recipe.launch=ray is not supported on cluster=local; use torchrun or direct")
    if launch == "direct" and ranks > 1:
        raise ConfigError(f"recipe.launch=direct starts one process but {ranks} ranks per node were asked for")
    if ranks > 1:
        elastic = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1"]
        argv = [*elastic, f"--nproc-per-node={ranks}", "--no-python", *argv]
    env = {**dict(cfg.recipe.env), **dict(cfg.cluster.env), "PYTHONUNBUFFERED": "1"}
    names = [str(n) for n in cfg.cluster.secret_names]
    return LaunchPlan(argv=argv, env=env, log_path=Path(cfg.run_dir) / "train.log", secret_names=names)


PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process gets when the thread that started it exits."""


def die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when this launcher dies, even by SIGKILL (Linux).

    SIGTERM is the preemption signal of the runtime (stop at the next step, save, exit), and
    torch.distributed.run forwards it to its ranks, so no training process outlives the launcher.
    """
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (AttributeError, OSError):  # not Linux: no parent-death signal
        return
    if os.getppid() != parent:  # the launcher died before prctl took effect
        os._exit(1)


@dataclass
class Finished:
    """How a local run ended."""

    code: int
    """Its exit code."""
    reason: Optional[str] = None
    """Its refusal's reason, else the exception line of its first traceback (the traceback is in the log
    only)."""


def run_local(plan: LaunchPlan) -> Finished:
    """Run the plan, streaming output to the log file and, tracebacks aside, to the terminal."""
    plan.log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**child_environ(), **plan.env}
    with plan.log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            plan.argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        shown = TerminalFilter()
        try:
            for line in proc.stdout:  # type: ignore[union-attr]
                log.write(line)
                if shown.show(line):
                    sys.stdout.write(line)
            return Finished(proc.wait(), shown.refusal or shown.reason)
        except KeyboardInterrupt:
            return Finished(stop(proc))


def stop(proc: subprocess.Popen) -> int:
    """Stop the process we started (by its PID): SIGINT, then SIGKILL after a grace period."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()
