"""Secrets passed the three usual ways (shell env, literal override, runspec env) are never printed:
not by `--cfg job`, `--help` or the dry run; a secret given a number is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FIXTURES = REPO / "tests" / "fixtures" / "recipes"
SHELL_TOKEN = "hf-shell-secret-value-777"
LITERAL = "literal-pw-secret-555"
RUNSPEC = "runspec-secret-value-4242"  # the fixture runspec's RUNSPEC_TOKEN
SECRETS = {"HF_TOKEN": SHELL_TOKEN, "DB_PASSWORD": LITERAL, "RUNSPEC_TOKEN": RUNSPEC}
ARGS = ("+recipe=fixture/secrets", "tracker=jsonl", "+cluster.env.HF_TOKEN=${oc.env:HF_TOKEN}",
        f"+cluster.env.DB_PASSWORD={LITERAL}")
ENV = {"HF_TOKEN": SHELL_TOKEN, "NEMOTRON_RECIPE_PATH": str(FIXTURES)}


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
