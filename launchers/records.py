"""The files a Slurm submit leaves in a run directory: resolved config, 0600 secrets, the job record,
each written atomically and durably (temp file, fsync, rename: nemotron/common/atomic_files.py).

`python -m nemotron.jobs` reads the records (`slurm_job.json`) back. Standard library only.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any, Dict

from nemotron.common.atomic_files import write_json_atomic, write_text_atomic

RECORD = "slurm_job.json"
"""The job record of a run (or sweep member)."""


def write_secrets(path: Path, secrets: Dict[str, str]) -> None:
    """KEY=value lines in a file only its owner can read (created 0600 before anything is written)."""
    write_text_atomic(path, "".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(secrets.items())), mode=0o600)
    path.chmod(0o600)  # a umask wider than 077 cannot widen it; an older file keeps no other mode


def write_member(run_dir: Path, resolved_yaml: str, secrets: Dict[str, str]) -> None:
    """The run's resolved config (and 0600 secrets) in its run directory."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", resolved_yaml)
    if secrets:
        write_secrets(run_dir / "secrets.env", secrets)


def write_record(run_dir: Path, record: Dict[str, Any]) -> None:
    """`<run_dir>/slurm_job.json`, replaced atomically: the only link from a run directory to its job."""
    write_json_atomic(run_dir / RECORD, record)


def job_record(info: Dict[str, Any], job_id: str, run_dir: Path, script: Path, **extra: Any) -> Dict[str, Any]:
    """What `python -m nemotron.jobs` reads back from `<run_dir>/slurm_job.json`."""
    return {
        "job_id": job_id,
        **info,
        "run_dir": str(run_dir),
        "script": str(script),
        "log": str(run_dir / "train.log"),
        "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
