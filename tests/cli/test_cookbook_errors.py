"""Bad input to `nemotron ...` (and to `cluster=<profile>`): one line, exit 2, no traceback, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOOD = '[base]\nexecutor = "slurm"\npartition = "debug"\n\n[child]\nextends = "base"\nnodes = 1\n'

CASES = {
    "unknown family": (["gtp", "pretrain"], GOOD, "nemotron gtp: unknown family (did you mean gpt?); available: "),
    "unknown stage": (["nano3", "pretrian"], GOOD, "unknown command (did you mean pretrain?); available: data, "),
    "unknown prep kind": (["nano3", "data", "prep", "sfft"], GOOD, "(did you mean sft?); available: "),
    "missing config": (["gpt", "pretrain", "-c", "tiyn"], GOOD, "-c tiyn: no config 'tiyn' in "),
    "missing config file": (["gpt", "pretrain", "-c", "./nope.yaml"], GOOD, "-c ./nope.yaml: no such file"),
    "unknown profile": (
        ["gpt", "pretrain", "--run", "chidl"],
        GOOD,
        "no profile 'chidl' (did you mean child?); profiles: base, child",
    ),
    "malformed env.toml": (
        ["gpt", "pretrain", "-b", "x"],
        '[x]\nnodes = 1\npartition = "a\n',
        "env.toml:3: TOML syntax error",
    ),
    "extends itself": (
        ["gpt", "pretrain", "-b", "a"],
        '[a]\nextends = "a"\n',
        "env.toml:2: profile 'a' extends 'a', a cycle (a -> a)",
    ),
    "extends a missing profile": (
        ["gpt", "pretrain", "-b", "a"],
        '[a]\n\nextends = "bsae"\n[base]\n',
        "env.toml:3: profile 'a' extends 'bsae', which is not a profile (did you mean base?)",
    ),
    "bad time": (
        ["gpt", "pretrain", "-b", "a"],
        '[a]\nexecutor = "slurm"\ntime = "4 hours"\n',
        "env.toml:3: time='4 hours'; write \"HH:MM:SS\"",
    ),
    "ssh tunnel": (
        ["gpt", "pretrain", "-b", "a"],
        '[a]\nexecutor = "slurm"\ntunnel = "ssh"\n',
        "profile 'a': tunnel='ssh' is not supported",
    ),
    "docker executor": (
        ["gpt", "pretrain", "-b", "a"],
        '[a]\nexecutor = "docker"\n',
        "executor='docker' is not supported here; use one of slurm, local",
    ),
    "bad nodes": (
        ["gpt", "pretrain", "-b", "a"],
        '[a]\nexecutor = "slurm"\nnodes = "two"\n',
        "env.toml:3: nodes='two'; write a whole number >= 1",
    ),
    "misspelt key": (
        ["gpt", "pretrain", "-b", "a"],
        '[a]\nexecutor = "slurm"\npartiton = "gpu"\n',
        "env.toml:3: profile 'a': unknown key 'partiton' (did you mean partition?)",
    ),
    "misspelt key in a parent profile": (
        ["gpt", "pretrain", "-b", "child"],
        '[base]\nexecutor = "slurm"\ngpus_per_nodes = 8\n\n[child]\nextends = "base"\n',
        "env.toml:3: profile 'child': unknown key 'gpus_per_nodes' (did you mean gpus_per_node?)",
    ),
    "swapped letters": (
        ["gpt", "pretrain", "-b", "a"],
        '[a]\nexecutor = "slurm"\naccoutn = "x"\n',
        "profile 'a': unknown key 'accoutn' (did you mean account?)",
    ),
    "stage flag": (["gpt", "pretrain", "--stage"], GOOD, "--stage: staging files on the cluster"),
    "run and batch": (["gpt", "pretrain", "-r", "base", "-b", "base"], GOOD, "--run and --batch cannot both"),
}


def nemotron(args, env_text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`nemotron ARGS` in tmp_path with an env.toml found by walking up (cwd has one, no pyproject above)."""
    (tmp_path / "env.toml").write_text(env_text)
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "NEMOTRON_ENV_FILE")}
    return subprocess.run(
        [sys.executable, "-m", "nemotron.cookbook.cli", *args, f"paths.output_root={tmp_path}/o"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line(case, tmp_path):
    args, env_text, expected = CASES[case]
    result = nemotron(args, env_text, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nemotron: error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()  # nothing ran or was written


def test_unsupported_key_is_one_note_per_key(tmp_path):
    text = GOOD + 'gpus_per_node = 1\nhost = "login"\npackager = "git"\nray_head_cpus = 4\n'
    result = nemotron(["gpt", "pretrain", "-b", "child", "-d"], text, tmp_path)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "is not used here" in line]
    assert notes == [
        f"env.toml: profile 'child': key 'host' is not used here (no counterpart); {tmp_path}/env.toml:9",
        f"env.toml: profile 'child': key 'ray_head_cpus' is not used here (no counterpart); {tmp_path}/env.toml:11",
    ]


def test_reserved_sections_are_one_note_each(tmp_path):
    text = '[wandb]\nproject = "p"\nentity = "e"\n\n[cli]\ntheme = "x"\n\n' + GOOD
    result = nemotron(["gpt", "pretrain", "-b", "child", "-d"], text, tmp_path)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "is not used here" in line]
    assert notes == [
        f"env.toml: section [wandb] is not used here (tracking is MLflow here: tracker=mlflow); {tmp_path}/env.toml:1",
        "env.toml: section [cli] is not used here (the command line takes no settings from env.toml); "
        f"{tmp_path}/env.toml:5",
    ]


def test_edit_distance_and_typo_threshold():
    from nemotron.cookbook.profile import edit_distance, known_keys

    assert edit_distance("partiton", "partition") == 1
    assert edit_distance("accoutn", "account") == 1  # two neighbours swapped: one edit
    assert edit_distance("gres", "gpus") == 2
    assert {"partition", "gpus_per_node", "executor", "extends", "max_nodes"} <= set(known_keys())


def test_hydra_form_refuses_a_misspelt_key(tmp_path):
    (tmp_path / "env.toml").write_text('[a]\nexecutor = "slurm"\nnodse = 2\n')
    result = _train_with_profile_a(tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{tmp_path}/env.toml:3: profile 'a': unknown key 'nodse' (did you mean nodes?)" in result.stderr
    assert not (tmp_path / "o").exists()


def test_hydra_form_names_the_env_file_line(tmp_path):
    (tmp_path / "env.toml").write_text('[a]\nextends = "zz"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "NEMOTRON_ENV_FILE")}
    result = _train_with_profile_a(tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{tmp_path}/env.toml:2: profile 'a' extends 'zz', which is not a profile" in result.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "nemotron.train", "+recipe=gpt/pretrain", "cluster=local", "--cfg", "job"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr  # a broken env.toml does not break the shipped options


def test_hydra_form_of_a_missing_recipe_config_lists_the_configs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    result = subprocess.run(
        [sys.executable, "-m", "nemotron.train", "+recipe=gpt/pretrain/tiyn", f"paths.output_root={tmp_path}/o"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "+recipe=gpt/pretrain/tiyn: recipe gpt/pretrain has no config 'tiyn' in " in result.stderr
    assert result.stderr.strip().endswith("(did you mean tiny?); its configs: default, tiny")


def _train_with_profile_a(tmp_path):
    """`cluster=a` from the env.toml's folder: found there (not via $NEMOTRON_ENV_FILE)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "NEMOTRON_ENV_FILE")}
    command = [
        sys.executable,
        "-m",
        "nemotron.train",
        "+recipe=gpt/pretrain",
        "cluster=a",
        f"paths.output_root={tmp_path}/o",
    ]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
