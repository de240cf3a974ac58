"""A refused command leaves nothing behind: the run or sweep directory Hydra made for it goes again.

Hydra creates the run directory (`.hydra/`, an empty `<job>.log`) or the sweep directory
(`multirun.yaml`) before our checks run. When a check refuses the command, `forget_dir` removes that
directory if it holds nothing else, and then its parents up to the output root while they are empty.
A directory holding anything more (a checkpoint, a log with content, a resumed run) is left alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

HYDRA_LEFTOVERS = {".hydra", "multirun.yaml"}
"""What Hydra writes before a job's own code runs (besides an empty log file)."""


def only_hydra_leftovers(folder: Path) -> bool:
    """True when `folder` holds only Hydra's records and empty log files."""
    for entry in folder.iterdir():
        empty_log = entry.suffix == ".log" and entry.is_file() and entry.stat().st_size == 0
        if entry.name not in HYDRA_LEFTOVERS and not empty_log:
            return False
    return True


def forget_dir(folder: Optional[str], stop_at: Optional[str] = None) -> None:
    """Remove `folder` if a refused command made it, then its empty parents below `stop_at`."""
    if not folder:
        return
    path = Path(folder).absolute()
    if not path.is_dir() or not only_hydra_leftovers(path):
        return
    shutil.rmtree(path, ignore_errors=True)
    root = Path(stop_at).absolute() if stop_at else path.parent
    parent = path.parent
    while parent != root and root in parent.parents and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
