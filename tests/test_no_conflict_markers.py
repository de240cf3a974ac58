"""No file the project tracks holds a merge conflict marker (one was left in docs for a session)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKERS = ("<<<<<<< ", ">>>>>>> ")


def test_no_tracked_file_holds_a_conflict_marker():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.suffix not in {".py", ".md", ".yaml", ".toml", ".txt", ".sh", ".json", ""}:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if line.startswith(MARKERS) or line == "=======":
                found.append(f"{name}:{number}")
    assert not found, f"merge conflict markers at {', '.join(found)}"
