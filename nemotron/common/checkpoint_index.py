"""Which checkpoint folders under `checkpoint.dir` are complete, and the newest one (no torch).

A folder `iter_N` is complete when its marker (written last by rank 0, after every rank finished)
is readable and every file it lists has the recorded size; anything else is skipped with a
`CheckpointWarning`. Saving and loading live in `checkpoint.py`.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

MARKER = "nemotron_checkpoint.json"
"""Written last into a checkpoint folder; a folder without it is incomplete."""
FORMAT = 1
_ITER = re.compile(r"^iter_(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint could not be saved or loaded; the message says why and what to change."""


class CheckpointTimeoutError(CheckpointError):
    """A save or load ran past `checkpoint.timeout_s`."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (incomplete or corrupt) or only partly restored."""


@dataclass(frozen=True)
class Found:
    """A complete checkpoint chosen for loading."""

    path: str
    step: int
    meta: Dict[str, Any] = field(default_factory=dict)
    """The marker's contents."""

    @property
    def run_id(self) -> Optional[str]:
        return self.meta.get("run_id")


def iter_dir(root: str, step: int) -> Path:
    return Path(root) / f"iter_{step:07d}"


def _warn(text: str) -> None:
    warnings.warn(text, CheckpointWarning, stacklevel=3)


def checkpoint_files(path: Path) -> Dict[str, int]:
    """Relative path -> size of every file under `path` except the marker."""
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != MARKER}


def _incomplete_reason(path: Path) -> Optional[str]:
    """None when `path` is a complete checkpoint, else what is wrong with it."""
    try:
        meta = json.loads((path / MARKER).read_text())
    except FileNotFoundError:
        return f"no {MARKER} (the save did not finish)"
    except (OSError, ValueError) as err:
        return f"unreadable {MARKER}: {err}"
    for name, size in meta.get("files", {}).items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != size:
            return f"{name} has {file.stat().st_size} bytes, the save wrote {size} (truncated?)"
    return None


def complete_checkpoints(root: str) -> List[Tuple[int, Path]]:
    """(step, path) of every complete checkpoint under `root`, oldest first."""
    return [(step, path) for step, path in _iter_dirs(root) if _incomplete_reason(path) is None]


def _iter_dirs(root: str) -> List[Tuple[int, Path]]:
    if not Path(root).is_dir():
        return []
    dirs = [(int(m.group(1)), p) for p in Path(root).iterdir()
            if p.is_dir() and (m := _ITER.match(p.name))]
    return sorted(dirs)


def latest(root: str) -> Optional[Found]:
    """The newest complete checkpoint under `root`; newer incomplete ones are skipped, warning."""
    for step, path in reversed(_iter_dirs(root)):
        reason = _incomplete_reason(path)
        if reason is None:
            return Found(str(path), step, json.loads((path / MARKER).read_text()))
        _warn(f"skipping checkpoint {path}: {reason}; trying the previous one")
    return None


def latest_run_id(root: str) -> Optional[str]:
    """The tracker run id stored with the newest complete checkpoint under `root`, if any."""
    found = latest(root)
    return found.run_id if found else None


class PretrainedNotFound(FileNotFoundError):
    """`checkpoint.pretrained` names no complete checkpoint; the message says how to get one."""


NEWEST = "newest:"
"""`checkpoint.pretrained=newest:<recipe>`: the newest complete checkpoint any run of that recipe
left under `paths.output_root`; `newest:<a>|<b>` takes a's newest, else b's (DPO: SFT, else pretrain)."""


def _newest(value: str, recipes: List[str], output_root: str) -> Found:
    for recipe in recipes:
        found = [f for d in Path(output_root, recipe).glob("*/checkpoints") if (f := latest(str(d)))]
        if found:
            return max(found, key=lambda f: (Path(f.path, MARKER).stat().st_mtime_ns, f.path))
    where = " or ".join(f"{Path(output_root, r)}/*/checkpoints" for r in recipes)
    raise PretrainedNotFound(
        f"checkpoint.pretrained={value}: no complete checkpoint under {where}; make one with "
        f"`python -m nemotron.train +recipe={recipes[-1]}`, name one with "
        "checkpoint.pretrained=<dir>, or start from random weights with checkpoint.pretrained=null")


def pretrained_checkpoint(value: str, output_root: str) -> Found:
    """The checkpoint `checkpoint.pretrained` names: `newest:<recipe>`, a run's checkpoint dir, or
    one `iter_N` folder. Raises PretrainedNotFound with one line saying how to get one."""
    if value.startswith(NEWEST):
        return _newest(value, value[len(NEWEST):].split("|"), output_root)
    path = Path(value)
    if _ITER.match(path.name) and _incomplete_reason(path) is None:
        return Found(str(path), int(_ITER.match(path.name).group(1)),
                     json.loads((path / MARKER).read_text()))
    found = latest(value)
    if found is None:
        raise PretrainedNotFound(f"checkpoint.pretrained={value} holds no complete checkpoint "
                                f"(folders named iter_NNNNNNN with a {MARKER})")
    return found
