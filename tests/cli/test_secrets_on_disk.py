"""Secrets passed the three usual ways (shell env, literal override, runspec env) never land in a file
a run writes, are never printed, and still reach the job.

A real local run tracked into a real MLflow server and a real 2-member local sweep of the
fixture/secrets recipe (tiny GPT, 2 steps): every file under the output root, the server's store and
its artifacts is read back and none holds a secret value; the recipe's `received.json` shows each
secret reached the training process. `--cfg job`, `--help` and the dry run print none; a secret given
a number is refused in one line. The Slurm job is in tests/slurm_launch/test_secrets_slurm.py.
"""

from __future__ import annotations

import pytest
from secrets_support import ARGS, ENV, SECRETS, assert_received, files_under, leaks, secrets_files

URI_PASSWORD = "UriPassw0rd"
"""A fourth way: the tracking URI's user info (the test server ignores it; a server with basic auth reads it)."""


@pytest.mark.slow
def test_local_run_writes_no_secret_and_the_job_gets_them(cli, tmp_path, mlflow_server):
    result = cli(
        *ARGS,
        "tracker=mlflow",
        f"tracker.uri={mlflow_server.uri.replace('://', f'://nemo:{URI_PASSWORD}@')}",
        "tracker.experiment=secrets",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'outputs' / 'run'}",
        env=ENV,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run_dir = tmp_path / "outputs" / "run"
    assert "done | 2/2 steps" in (run_dir / "train.log").read_text()
    assert {p.name for p in (run_dir / ".hydra").iterdir()} >= {"config.yaml", "hydra.yaml", "overrides.yaml"}
    assert "DB_PASSWORD: ${oc.env:DB_PASSWORD}" in (run_dir / "config.yaml").read_text()
    assert ":${oc.env:NEMOTRON_TRACKER_URI_PASSWORD}@" in (run_dir / "config.yaml").read_text()
    assert files_under(mlflow_server.root / "artifacts") > 0
    assert leaks(tmp_path / "outputs", mlflow_server.root) == []
    assert len(secrets_files(tmp_path / "outputs")) <= 1
    assert_received(run_dir)
    for value in SECRETS.values():
        assert value not in result.stdout + result.stderr
    files = [p for root in (tmp_path / "outputs", mlflow_server.root) for p in root.rglob("*") if p.is_file()]
    assert [str(p) for p in files if p.name != "secrets.env" and URI_PASSWORD.encode() in p.read_bytes()] == []
    assert URI_PASSWORD not in result.stdout + result.stderr


@pytest.mark.slow
def test_local_sweep_members_write_no_secret(cli, tmp_path):
    result = cli(
        *ARGS,
        "tracker=jsonl",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={tmp_path / 'outputs' / 'sweep'}",
        "-m",
        "optim.lr=1e-3,2e-3",
        env=ENV,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    sweep = tmp_path / "outputs" / "sweep"
    members = sorted(p for p in sweep.iterdir() if (p / "train.log").is_file())
    assert len(members) == 2 and (sweep / "multirun.yaml").is_file()
    assert leaks(tmp_path / "outputs") == []
    for member in members:
        assert_received(member)
    for value in SECRETS.values():
        assert value not in result.stdout + result.stderr


@pytest.mark.parametrize("flag", [("--cfg", "job"), ("--help",), ("dry_run=true",)])
def test_printed_config_shows_no_secret(cli, flag):
    result = cli(*ARGS, "tracker=jsonl", *flag, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DB_PASSWORD" in result.stdout
    for value in SECRETS.values():
        assert value not in result.stdout + result.stderr


def test_secret_given_a_number_is_refused_in_one_line(cli):
    result = cli("+recipe=fixture/secrets", "+cluster.env.DB_PASSWORD=12345678", "dry_run=true", env=ENV)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cluster.env.DB_PASSWORD: a secret must be a string, not int; "
        "quote the value (cluster.env.DB_PASSWORD=\"'...'\")"
    ]
