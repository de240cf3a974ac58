"""Files written whole or not at all: a temp file beside the target, then a rename (stdlib only).

Readers of a path written here see either the old content or all of the new; a crash leaves a
`<name>.tmp<pid>` file that the next write of the same name replaces."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional


def tmp_path_for(path: Path | str) -> Path:
    """The temp name `path` is written under before it is renamed into place."""
    return Path(f"{path}.tmp{os.getpid()}")


def write_atomic(path: Path, content: bytes) -> None:
    """Write `content` to `path` through a temp file and a rename: readers see all of it or nothing."""
    tmp = tmp_path_for(path)
    tmp.write_bytes(content)
    os.replace(tmp, path)


def read_json(path: Path) -> Optional[Any]:
    """The JSON content of `path`; None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
