"""Files written whole or not at all, and durable once written (stdlib only).

`write_atomic` (bytes), `write_text_atomic` and `write_json_atomic` write a temp file in the target's
own directory (a name unique to this writer: pid and a random part), flush and fsync it, rename it over
the target, then fsync the directory so the rename itself survives a crash. Readers see the old content
or all of the new; a write that fails midway (full disk, a signal, a crash) leaves the old content and
removes its temp file when it can (a killed process leaves a `<name>.tmp<pid>-<hex>` file, never the
target half-written).

`fsync_path`, `fsync_dir` and `fsync_tree` make what was written by other means durable (checkpoint
shards before their completion marker).

`tmp_path_for` is the fixed per-process temp name of writers that build a file in several calls
(tokenized shards: `<name>.tmp<pid>`); they rename it into place themselves."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, Optional


def tmp_path_for(path: Path | str) -> Path:
    """The temp name a multi-call writer of this process builds `path` under before renaming it."""
    return Path(f"{path}.tmp{os.getpid()}")


def unique_tmp_path(path: Path | str) -> Path:
    """A temp name beside `path` that no other writer (process, thread or host) picks."""
    return Path(f"{path}.tmp{os.getpid()}-{secrets.token_hex(4)}")


def fsync_path(path: Path | str) -> None:
    """Flush `path` (a file or a directory) to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path | str) -> None:
    """Flush a directory's entries (a rename or a new file in it) to stable storage; a file system that
    cannot fsync a directory (some network ones) is let be."""
    try:
        fsync_path(path)
    except OSError:
        pass


def fsync_tree(root: Path | str) -> None:
    """fsync every file under `root`, then every directory, deepest first, `root` last."""
    dirs = []
    for here, _subdirs, files in os.walk(root):
        dirs.append(here)
        for name in files:
            fsync_path(os.path.join(here, name))
    for here in reversed(dirs):
        fsync_dir(here)


def write_atomic(path: Path | str, content: bytes, mode: int = 0o666) -> None:
    """Write `content` to `path` through a synced temp file and a rename, then sync the directory.
    `mode` is the new file's permission (less the umask), set at creation: 0o600 is never readable
    by others, not even for a moment."""
    path = Path(path)
    tmp = unique_tmp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: Path | str, text: str, mode: int = 0o666) -> None:
    """`write_atomic` of `text` as UTF-8."""
    write_atomic(path, text.encode("utf-8"), mode)


def write_json_atomic(path: Path | str, content: Any, indent: Optional[int] = 1) -> None:
    """`write_atomic` of `content` as JSON (with a final newline)."""
    write_text_atomic(path, json.dumps(content, indent=indent) + "\n")


def read_json(path: Path | str) -> Optional[Any]:
    """The JSON content of `path`; None when it is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
