"""Freeze the code a job runs at submission time, so edits or a branch switch after `sbatch` change nothing.

    snap = take(run_dir / "code", uncommitted="ship")    # copies nemotron/, recipes/, conf/, ...
    argv = ["python", job_path(snap, cfg.recipe.script), "--config", ...]   # env PYTHONPATH=<snap.path>

In a git work tree the copy is what `git ls-files --cached --others --exclude-standard` lists under
CODE_PATHS (tracked and untracked files, ignored ones left out; files deleted in the work tree skipped);
outside git (an installed package) it is the package directory and the code folders beside it.
Uncommitted changes are shipped and recorded (`SNAPSHOT.json`, `uncommitted.diff`) or refused.
The copy is built in a temp dir beside `dest` and renamed into place, so a `dest` holding
`SNAPSHOT.json` is complete; taking it again (a requeued or resubmitted run) reuses it.

With a `store` (launchers/slurm.py passes `<paths.output_root>/.code`), identical code is copied once:
the copy goes to `<store>/<content key>` (the commit, the file list and the bytes of every uncommitted
file: `content_key`) and `dest` becomes a relative symlink to it, so a submit of unchanged code
creates one link instead of ~300 files (40-400 ms on the test VM, more on a parallel file system).
Entries are shared by the runs that link to them: never edit one in place.

Imports: a python started with `PYTHONPATH=<snap.path>` imports `nemotron` from the copy even with the
editable install, whose finder is appended to `sys.meta_path` after the `sys.path` finder. Two things
still reach the live checkout: `python -m ...` started in the checkout (the working directory goes
first on sys.path) and `python -I`/`-E` (PYTHONPATH ignored). Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, List, Optional

from nemotron.common.atomic_files import fsync_dir, write_json_atomic
from nemotron.common.paths import REPO_ROOT
from nemotron.tracking.context import SNAPSHOT_RECORD

CODE_PATHS = ("nemotron", "launchers", "recipes", "conf", "hydra_plugins", "pyproject.toml")
"""What a snapshot holds, relative to the code root."""
PACKAGE_DIRS = {"launchers": "nemotron/launchers"}
"""Folders installed under another import name (pyproject.toml package-dir): the copy puts them where that
name is found, so a python started on the copy imports `nemotron.launchers` from it too."""
POLICIES = ("ship", "refuse")
"""What to do with uncommitted changes: copy them as they are (recorded), or stop the submission."""
RECORD = SNAPSHOT_RECORD
"""Written last: a snapshot directory holding it is complete (the runtime reads it by that name)."""
DIFF = "uncommitted.diff"
"""`git diff HEAD` of the code paths plus the untracked files, written when the tree is dirty."""
GIT_TIMEOUT_S = 20
"""Longest one git call may take (a huge or network-mounted checkout)."""
SHOWN_FILES = 3
"""Uncommitted paths named in a refusal."""
STORE_LAYOUT = "nemotron-code-1"
"""Part of every content key: a change to what a snapshot holds (CODE_PATHS, PACKAGE_DIRS) bumps it."""


@dataclass
class Snapshot:
    """A frozen copy of the code and where it came from."""

    path: Path
    """The copy; put it first on PYTHONPATH."""
    source: Path
    """The code root it was copied from."""
    commit: Optional[str]
    """HEAD of the source checkout; None outside git."""
    dirty: Optional[bool]
    """Whether the code paths differ from HEAD (untracked files count); None outside git."""
    uncommitted_files: List[str] = field(default_factory=list)
    """Modified, added, deleted and untracked paths, relative to the source."""
    policy: str = "ship"
    """The `uncommitted` policy it was taken with."""
    seconds: float = 0.0
    """How long listing and copying took."""
    num_files: int = 0
    """Files copied."""
    num_bytes: int = 0
    """Their total size."""
    created: str = ""
    """When it was taken (UTC, ISO 8601)."""
    reused: bool = False
    """True when `take` found it complete and copied nothing (not recorded in the file)."""


def code_root() -> Path:
    """The directory holding the `nemotron` package: the checkout for an editable install."""
    return REPO_ROOT


def _git(args: List[str], cwd: Path) -> Optional[str]:
    """Stdout of `git ARGS` in `cwd`, or None without git, outside a repository, or on a timeout."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never take index.lock from under the user's git
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _split(out: str) -> List[str]:
    return list(dict.fromkeys(p for p in out.split("\0") if p))


def git_files(root: Path) -> Optional[List[str]]:
    """Files git would ship under CODE_PATHS, or None when `root`'s code is not in a git work tree."""
    out = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *CODE_PATHS], root)
    files = _split(out) if out is not None else []
    return files if "nemotron/__init__.py" in files else None  # ignored (a venv inside a checkout): not git


def head(root: Path) -> Optional[str]:
    """The commit checked out at `root`; None before the first commit."""
    return (_git(["rev-parse", "--verify", "-q", "HEAD"], root) or "").strip() or None


def changed_files(root: Path) -> Optional[List[str]]:
    """Paths under CODE_PATHS that differ from HEAD or are untracked (not ignored), relative to `root`.

    None when `git status` fails (a timeout): the state is unknown, not clean.
    """
    out = _git(["status", "--porcelain=v1", "-z", "--no-renames", "--untracked-files=all", "--", *CODE_PATHS], root)
    if out is None:
        return None
    prefix = (_git(["rev-parse", "--show-prefix"], root) or "").strip()
    paths = [entry[3:] for entry in _split(out)]  # "XY path", relative to the top level
    return sorted(p[len(prefix) :] if p.startswith(prefix) else p for p in paths if not bytecode(p))


def plain_files(root: Path) -> List[str]:
    """Files under CODE_PATHS found by walking `root` (no git), relative to it."""
    found = []
    for name in CODE_PATHS:
        if (root / name).is_file():
            found.append(name)
        for folder, dirs, files in os.walk(root / name):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            found += [str(Path(folder, f).relative_to(root)) for f in sorted(files)]
    return found


def bytecode(rel: str) -> bool:
    """Compiled files, never copied nor counted as uncommitted (a checkout may not ignore them)."""
    return "__pycache__" in Path(rel).parts or rel.endswith(".pyc")


def snapshot_rel(rel: str) -> str:
    """Where a file of the code root goes inside the copy (`launchers/x.py` -> `nemotron/launchers/x.py`)."""
    top, _, rest = rel.partition("/")
    return f"{PACKAGE_DIRS[top]}/{rest}" if top in PACKAGE_DIRS and rest else rel


def _copy(root: Path, files: List[str], dest: Path) -> tuple[int, int]:
    """Copy `files` (relative to `root`) into `dest`; skip vanished files and bytecode. (count, bytes)."""
    count = size = 0
    for rel in files:
        src = root / rel
        if bytecode(rel) or not src.is_file():
            continue
        target = dest / snapshot_rel(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(src, target)
        except FileNotFoundError:  # deleted while we copied (an editor's atomic save)
            continue
        count, size = count + 1, size + target.stat().st_size
    return count, size


def _diff_text(root: Path, commit: Optional[str], dirty_files: List[str]) -> str:
    """`git diff HEAD` of the code paths, then the untracked files (copied as they are)."""
    diff = _git(["diff", "--no-color", "--no-ext-diff", "HEAD", "--", *CODE_PATHS], root) if commit else None
    tracked = set(_split(_git(["ls-files", "-z", "--", *CODE_PATHS], root) or ""))
    untracked = [p for p in dirty_files if p not in tracked]
    lines = [f"# untracked: {p}" for p in untracked]
    return (diff or "") + ("\n".join(lines) + "\n" if lines else "")


def _config_error(message: str) -> Exception:
    from nemotron.config.validate import ConfigError  # lazy: that module pulls in hydra and omegaconf

    return ConfigError(message)


def _not_a_snapshot(dest: Path) -> Exception:
    """The refusal for a `dest` that holds something else than a complete snapshot (nothing is touched)."""
    return _config_error(
        f"{dest} exists and is not a code snapshot (no {RECORD}); remove it or snapshot into another directory"
    )


def _check_policy(policy: Any, root: Path, dirty_files: List[str]) -> str:
    """The policy's name; refuse a dirty tree under "refuse" (one line, naming the first files)."""
    name = str(getattr(policy, "value", policy))
    if name not in POLICIES:
        raise _config_error(f"uncommitted={name!r} is not a policy; expected one of {', '.join(POLICIES)}")
    if name == "refuse" and dirty_files:
        shown = ", ".join(dirty_files[:SHOWN_FILES]) + (", ..." if len(dirty_files) > SHOWN_FILES else "")
        raise _config_error(
            f"{len(dirty_files)} uncommitted file(s) under {root}: {shown}; "
            f"commit or stash them, or set cluster.uncommitted=ship"
        )
    return name


def load(dest: Path) -> Snapshot:
    """The snapshot recorded in `dest/SNAPSHOT.json` (its `path` set to `dest`, wherever it was taken)."""
    data = json.loads((Path(dest) / RECORD).read_text(encoding="utf-8"))
    data.update(path=Path(dest), source=Path(data["source"]), reused=True)
    return Snapshot(**{k: v for k, v in data.items() if k in Snapshot.__dataclass_fields__})


def _fill(snap: Snapshot, files: List[str], tmp: Path, start: float) -> None:
    """Copy `files` into `tmp`, write the diff when dirty, and the record last."""
    snap.num_files, snap.num_bytes = _copy(snap.source, files, tmp)
    if snap.uncommitted_files:
        (tmp / DIFF).write_text(_diff_text(snap.source, snap.commit, snap.uncommitted_files), encoding="utf-8")
    snap.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    snap.seconds = round(time.perf_counter() - start, 4)
    data = {**asdict(snap), "path": str(snap.path), "source": str(snap.source)}
    data.pop("reused")
    write_json_atomic(tmp / RECORD, data, indent=2)  # the copied files are not fsynced: ~0.5 s per snapshot


def _place(tmp: Path, dest: Path) -> bool:
    """Rename the finished copy to `dest`; False when a complete snapshot got there first."""
    try:
        os.rename(tmp, dest)  # replaces an empty directory; fails on a non-empty one
        fsync_dir(dest.parent)
        return True
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if (dest / RECORD).is_file():
            return False
        raise _not_a_snapshot(dest) from None


def take(dest: Path, uncommitted: Any = "ship", root: Optional[Path] = None, store: Optional[Path] = None) -> Snapshot:
    """Copy the code under `root` (default: code_root()) into `dest` and record where it came from.

    Reuses `dest` when it already holds a complete snapshot. With a `store`, the copy is made (or found)
    in the store under its content key and `dest` links to it. Raises ConfigError when the policy is
    "refuse" and the code paths have uncommitted changes; nothing is written then.
    """
    dest, start = Path(dest).absolute(), time.perf_counter()
    if (dest / RECORD).is_file():
        return load(dest)
    root = Path(root or code_root()).resolve()
    files = git_files(root)
    in_git = files is not None
    changed = changed_files(root) if in_git else None
    snap = Snapshot(
        path=dest,
        source=root,
        commit=head(root) if in_git else None,
        dirty=None if changed is None else bool(changed),
        uncommitted_files=changed or [],
        policy=_check_policy(uncommitted, root, changed or []),
    )
    listing = files if in_git else plain_files(root)
    if store is None:
        return _build(snap, listing, dest, start)
    entry = Path(store).absolute() / content_key(root, snap.commit, listing, changed)
    if (entry / RECORD).is_file():  # this code is stored already: link it
        _link(entry, dest)
        return load(dest)
    built = _build(replace(snap, path=entry), listing, entry, start)
    _link(entry, dest)
    return replace(built, path=dest)


def _build(snap: Snapshot, files: List[str], dest: Path, start: float) -> Snapshot:
    """Copy into a temp dir beside `dest`, then rename it to `dest` (or find a complete one there)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()  # not tempfile.mkdtemp: its 0700 would hide the code from the rest of the team
    try:
        _fill(snap, files, tmp, start)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return snap if _place(tmp, dest) else load(dest)


def content_key(root: Path, commit: Optional[str], files: List[str], changed: Optional[List[str]]) -> str:
    """What identifies the code a snapshot of `files` holds: the commit and the file list, plus the bytes
    and executable bit of each uncommitted file (of every file outside git, or when git status failed)."""
    digest = hashlib.sha256(f"{STORE_LAYOUT}\0{commit or ''}\0".encode())
    for rel in files:
        digest.update(rel.encode() + b"\0")
    for rel in sorted(changed if commit and changed is not None else files):
        if bytecode(rel):
            continue
        digest.update(b"\1" + rel.encode() + b"\0")
        try:
            digest.update(b"x" if os.stat(root / rel).st_mode & stat.S_IXUSR else b"-")
            digest.update((root / rel).read_bytes())
        except OSError:  # deleted (or a directory): its absence is the content
            digest.update(b"\2")
    return digest.hexdigest()[:32]


def _link(entry: Path, dest: Path) -> None:
    """Make `dest` a relative symlink to the store `entry` (an empty directory there is replaced)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
        dest.rmdir()
    try:
        os.symlink(os.path.relpath(entry, dest.parent), dest)
    except FileExistsError:
        if not (dest / RECORD).is_file():  # another taker linked it first: fine; anything else is not ours
            raise _not_a_snapshot(dest) from None
    fsync_dir(dest.parent)


def job_path(snap: Snapshot, script: Any) -> str:
    """`script` inside the snapshot when it lies under the snapshot's source and was copied; else as is.

    Recipes from $NEMOTRON_RECIPE_PATH (outside the source) keep their path and run live.
    """
    try:
        rel = Path(str(script)).resolve().relative_to(snap.source)
    except (ValueError, OSError):
        return str(script)
    copied = snap.path / rel
    return str(copied) if rel.parts and copied.is_file() else str(script)
