"""Secrets passed the three usual ways never land in a file a run writes, and still reach the job.

A real local run and a real 2-member local sweep of the fixture/secrets recipe (tiny GPT, 2 steps,
tracker=jsonl): every file under the output root is read back, none holds a secret value, and the
recipe's `received.json` (sha256 digests written by the training process) shows that each secret was
in its environment and that its config's `${oc.env:NAME}` references resolved to the real values.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

FIXTURES = REPO / "tests" / "fixtures" / "recipes"
SHELL_TOKEN = "hf-shell-secret-value-777"
LITERAL = "literal-pw-secret-555"
RUNSPEC = "runspec-secret-value-4242"  # the fixture runspec's RUNSPEC_TOKEN
SECRETS = {"HF_TOKEN": SHELL_TOKEN, "DB_PASSWORD": LITERAL, "RUNSPEC_TOKEN": RUNSPEC}
ARGS = ("+recipe=fixture/secrets", "tracker=jsonl", "+cluster.env.HF_TOKEN=${oc.env:HF_TOKEN}",
        f"+cluster.env.DB_PASSWORD={LITERAL}")
ENV = {"HF_TOKEN": SHELL_TOKEN, "NEMOTRON_RECIPE_PATH": str(FIXTURES)}


def leaks(root: Path) -> list:
    """Files under `root` holding a secret value (and which)."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(str(path), name) for name, value in SECRETS.items() if value.encode() in data]
    return found


def assert_received(run_dir: Path) -> None:
    received = json.loads((run_dir / "received.json").read_text())
    digests = {name: hashlib.sha256(value.encode()).hexdigest() for name, value in SECRETS.items()}
    for name, digest in digests.items():
        assert received["env"].get(name) == digest, name
        assert received["config"].get(name) == digest, name


def test_local_run_writes_no_secret_and_the_job_gets_them(cli, tmp_path):
    result = cli(*ARGS, f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'outputs' / 'run'}",
                 env=ENV, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run_dir = tmp_path / "outputs" / "run"
    assert "done | 2/2 steps" in (run_dir / "train.log").read_text()
    assert {p.name for p in (run_dir / ".hydra").iterdir()} >= {"config.yaml", "hydra.yaml", "overrides.yaml"}
    assert "DB_PASSWORD: ${oc.env:DB_PASSWORD}" in (run_dir / "config.yaml").read_text()
    assert leaks(tmp_path / "outputs") == []
    assert_received(run_dir)
    for value in SECRETS.values():
        assert value not in result.stdout + result.stderr


def test_local_sweep_members_write_no_secret(cli, tmp_path):
    result = cli(*ARGS, f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={tmp_path / 'outputs' / 'sweep'}",
                 "-m", "optim.lr=1e-3,2e-3", env=ENV, timeout=400)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    sweep = tmp_path / "outputs" / "sweep"
    members = sorted(p for p in sweep.iterdir() if (p / "train.log").is_file())
    assert len(members) == 2 and (sweep / "multirun.yaml").is_file()
    assert leaks(tmp_path / "outputs") == []
    for member in members:
        assert_received(member)


@pytest.mark.parametrize("flag", [("--cfg", "job"), ("--help",), ("dry_run=true",)])
def test_printed_config_shows_no_secret(cli, flag):
    result = cli(*ARGS, *flag, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DB_PASSWORD" in result.stdout
    for value in SECRETS.values():
        assert value not in result.stdout + result.stderr


def test_secret_given_a_number_is_refused_in_one_line(cli):
    result = cli("+recipe=fixture/secrets", "+cluster.env.DB_PASSWORD=12345678", "dry_run=true", env=ENV)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cluster.env.DB_PASSWORD: a secret must be a string, not int; "
        "quote the value (cluster.env.DB_PASSWORD=\"'...'\")"]
