"""What the secrets tests share: the three secrets, how they are passed, and the on-disk checks.

The fixture recipe tests/fixtures/recipes/secrets writes `<run_dir>/received.json` (sha256 digests of
the secrets in its environment and in its resolved config); `assert_received` checks them.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "recipes"
SHELL_TOKEN = "hf-shell-secret-value-777"
LITERAL = "literal-pw-secret-555"
RUNSPEC = "runspec-secret-value-4242"  # the fixture runspec's RUNSPEC_TOKEN
SECRETS = {"HF_TOKEN": SHELL_TOKEN, "DB_PASSWORD": LITERAL, "RUNSPEC_TOKEN": RUNSPEC}
ARGS = ("+recipe=fixture/secrets", "+cluster.env.HF_TOKEN=${oc.env:HF_TOKEN}", f"+cluster.env.DB_PASSWORD={LITERAL}")
"""The shell-env and literal ways; the third (runspec env) is in the fixture recipe itself."""
ENV = {"HF_TOKEN": SHELL_TOKEN, "NEMOTRON_RECIPE_PATH": str(FIXTURES)}
SECRETS_FILE = "secrets.env"
"""The one file a run may hold secrets in (mode 0600)."""


def leaks(*roots: Path) -> list:
    """(file, secret name) for each file under `roots` holding a secret value, the secrets file aside."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.name != SECRETS_FILE:
                data = path.read_bytes()
                found += [(str(path), name) for name, value in SECRETS.items() if value.encode() in data]
    return found


def secrets_files(root: Path) -> list:
    """Every secrets file under `root`, asserting each is readable by its owner only."""
    files = sorted(root.rglob(SECRETS_FILE))
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    return files


def files_under(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def assert_received(run_dir: Path) -> None:
    """The training process had each secret in its environment and in its resolved config."""
    received = json.loads((run_dir / "received.json").read_text())
    for name, value in SECRETS.items():
        digest = hashlib.sha256(value.encode()).hexdigest()
        assert received["env"].get(name) == digest, name
        assert received["config"].get(name) == digest, name
