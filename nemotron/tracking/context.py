"""What a run records about where it came from: tags and source texts (stdlib only).

Tags: recipe and runspec name, recipe script, git commit and dirty flag (git runs as a subprocess with
a timeout; no git or no repository just leaves the tags out), Slurm job/array ids when `SLURM_*`
variables exist, host, cluster option, run directory. Texts: the recipe script's `# /// script`
block and any `*.sbatch` file in the run directory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple


GIT_TIMEOUT_S = 5
"""Longest a git call may take (a huge or network-mounted checkout)."""
SLURM_TAGS = {
    "SLURM_JOB_ID": "slurm.job_id",
    "SLURM_ARRAY_JOB_ID": "slurm.array_job_id",
    "SLURM_ARRAY_TASK_ID": "slurm.array_task_id",
    "SLURM_RESTART_COUNT": "slurm.restart_count",
    "SLURM_JOB_NAME": "slurm.job_name",
    "SLURM_CLUSTER_NAME": "slurm.cluster",
    "SLURM_JOB_PARTITION": "slurm.partition",
    "SLURM_JOB_NUM_NODES": "slurm.num_nodes",
    "SLURM_JOB_NODELIST": "slurm.nodelist",
}
"""Slurm environment variable -> tag, set when the variable exists."""
SNAPSHOT_RECORD = "SNAPSHOT.json"
"""The file a code snapshot holds at its root (written by the launch layer's launchers/snapshot.py, read
here by name: the runtime side imports no launch code)."""


def _git(args: List[str], cwd: Path) -> Optional[str]:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(path: Any) -> Tuple[Optional[str], Optional[bool]]:
    """(commit sha, dirty) of the checkout holding `path`; (None, None) without git or a repository.

    Dirty means tracked files differ from the commit (untracked files do not count).
    """
    where = Path(path)
    where = where if where.is_dir() else where.parent
    if not where.is_dir():
        return None, None
    sha = _git(["rev-parse", "HEAD"], where)
    if not sha:
        return None, None
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    return sha, (bool(status) if status is not None else None)


def code_dir() -> Path:
    """The folder this process imports nemotron from: the run's `code` (a link into the snapshot store,
    left unresolved: the run's own path is what its records name) or the checkout."""
    return Path(os.path.abspath(__file__)).parents[2]


def snapshot_state() -> Optional[Dict[str, Any]]:
    """The code snapshot this process runs from (a Slurm job started from `<run_dir>/code`), if any."""
    record = code_dir() / SNAPSHOT_RECORD
    try:
        return json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def code_line() -> Optional[str]:
    """'code: <dir> (snapshot of <commit>[, with uncommitted changes])' for a job started from a code
    snapshot (a Slurm job's frozen copy); None for a run from the checkout itself, which says nothing new."""
    snap = snapshot_state()
    if snap is None:
        return None
    root = code_dir()
    commit = (snap.get("commit") or "no git commit")[:12]
    return f"code: {root} (snapshot of {commit}{', with uncommitted changes' if snap.get('dirty') else ''})"


def code_state(cfg: Any) -> Tuple[Optional[str], Optional[bool]]:
    """(commit, dirty) of the code this run executes: the snapshot's record, else the recipe's checkout."""
    snap = snapshot_state()
    if snap is not None:
        return snap.get("commit"), snap.get("dirty")
    return git_state(_source_dir(cfg))


def _source_dir(cfg: Any) -> Path:
    script = str(cfg.recipe.script or "")
    return Path(script).parent if script else Path(__file__).resolve().parent


def run_tags(cfg: Any) -> Dict[str, Any]:
    """The tags every tracked run gets (values may be None: those are left out)."""
    sha, dirty = code_state(cfg)
    tags: Dict[str, Any] = {
        "nemotron.recipe": cfg.recipe.name or None,
        "nemotron.runspec": cfg.recipe.name or None,
        "nemotron.recipe.script": cfg.recipe.script or None,
        "nemotron.cluster": cfg.cluster.name,
        "nemotron.executor": str(getattr(cfg.cluster.executor, "value", cfg.cluster.executor)),
        "nemotron.run_dir": str(cfg.run_dir),
        "nemotron.code": str(code_dir()),
        "nemotron.git.commit": sha,
        "nemotron.git.dirty": None if dirty is None else str(dirty).lower(),
        "host": socket.gethostname(),
        "mlflow.source.name": cfg.recipe.script or None,
        "mlflow.source.git.commit": sha,
        "mlflow.user": os.environ.get("USER") or os.environ.get("LOGNAME"),
    }
    tags.update({tag: os.environ[var] for var, tag in SLURM_TAGS.items() if os.environ.get(var)})
    return tags


def runspec_block(script: Any) -> Optional[str]:
    """The text of the script's `# /// script ... # ///` block (comment markers kept), or None."""
    try:
        lines = Path(script).read_text(encoding="utf-8").splitlines()
    except (OSError, TypeError, ValueError):
        return None
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "# /// script")
        end = next(i for i in range(start + 1, len(lines)) if lines[i].rstrip() == "# ///")
    except StopIteration:
        return None
    return "\n".join(lines[start:end + 1]) + "\n"


def sbatch_scripts(run_dir: Any) -> List[Path]:
    """The batch script that started this run: `*.sbatch` in the run directory, or the job array's
    script in the sweep directory, as the run's `slurm_job.json` names it."""
    root = Path(run_dir)
    if not root.is_dir():
        return []
    found = set(root.glob("*.sbatch"))
    try:
        script = Path(json.loads((root / "slurm_job.json").read_text(encoding="utf-8"))["script"])
        if script.is_file():
            found.add(script)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return sorted(found)

