"""The cookbook's command line (`nemotron <family> <stage> -c/-r/-b/-d`) is a call of the Hydra app.

Every command of the tree (derived from the shipped recipes' runspec blocks) composes the same resolved
config, byte for byte, as the `python -m nemotron.train ...` line it prints; an env.toml profile gives
the same dry run (config and sbatch script) through `-b <profile>` and `cluster=<profile>`. Each form's
command lines run in one process (tests/cli/cookbook_forms.py) to keep this cheap.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from blend_support import prepared_blend  # the blend.json `nemotron nano3 data prep pretrain -c default` writes
from conftest import write_word_tokenizer

from nemotron.cookbook.cli import hydra_argv, parse_options
from nemotron.cookbook.tree import build_tree

REPO = Path(__file__).resolve().parents[2]
FORMS = Path(__file__).with_name("cookbook_forms.py")
ENV_TOML = """\
[wandb]
project = "nemotron"

[base-slurm]
executor = "slurm"
partition = "debug"
time = "00:10:00"

[my-cluster]
extends = "base-slurm"
nodes = 1
ntasks_per_node = 1
gpus_per_node = 1
run_partition = "interactive"
env_vars = { NCCL_DEBUG = "WARN" }

[big]
extends = "my-cluster"
exclusive = true
mem = "0"
constraint = "h100"
"""


def leaves(node, found=None):
    """Every command of the tree."""
    found = [] if found is None else found
    if node.command is not None:
        found.append(node.command)
    for child in node.children.values():
        leaves(child, found)
    return found


def run_forms(form: str, lines: list, env: dict | None = None) -> list:
    """Run command lines of one form in one process; their stdout, stderr and codes."""
    full = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "SLURM_CONF")}  # no sinfo
    done = subprocess.run(
        [sys.executable, str(FORMS), form, json.dumps(lines)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**full, **(env or {})},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(done.stdout)


def printed_line(stderr: str) -> list:
    """The argv of the `# = python -m nemotron.train ...` line a command prints."""
    found = re.search(r"^# = python -m nemotron\.train (.*)$", stderr, re.M)
    assert found, stderr
    return shlex.split(found.group(1))


SHIPPED = {"gpt/pretrain", "nano3/pretrain", "gpt/sft", "nano3/sft", "data/prep", "data/prep_sft"}
"""Recipes that compose without inputs (recipes added later may need some: they must fail alike)."""


def without_our_lines(stderr: str) -> str:
    """stderr without the cookbook command's own `# = ...` line."""
    return "\n".join(line for line in stderr.splitlines() if not line.startswith("# = "))


def toy_recipe(root: Path) -> None:
    """A recipe `toy/pretrain` with two configs (default: 11 steps, tiny: 3) under `root`."""
    config = root / "toy" / "pretrain" / "config"
    config.mkdir(parents=True)
    (config.parent / "train.py").write_text(
        '"""Toy pretraining."""\n# /// script\n# [tool.runspec]\n# name = "toy/pretrain"\n# ///\n'
    )
    (config / "default.yaml").write_text("train:\n  steps: 11\n")
    (config / "tiny.yaml").write_text("defaults:\n  - override /model: gpt_tiny\ntrain:\n  steps: 3\n")


def test_every_command_composes_like_its_hydra_line(tmp_path, monkeypatch):
    toy_recipe(tmp_path / "recipes")
    monkeypatch.setenv("NEMOTRON_RECIPE_PATH", str(tmp_path / "recipes"))
    (tmp_path / "mine.yaml").write_text("train:\n  steps: 7\n")
    commands = [c for c in leaves(build_tree()) if c.recipe is not None]
    names = {c.recipe.name for c in commands}
    assert SHIPPED <= names
    extra = ["--cfg", "job", "--resolve", f"hydra.run.dir={tmp_path}/run", f"paths.output_root={tmp_path}"]
    lines = [[*c.words, *extra] for c in commands]
    variants = {
        ("toy", "pretrain", "-c", "tiny"): ("+recipe=toy/pretrain/tiny", "steps: 3"),
        ("gpt", "pretrain", "-c", str(tmp_path / "mine.yaml")): (f"+recipe=gpt/pretrain/@{tmp_path}/mine", "steps: 7"),
    }
    cookbook = run_forms("cookbook", [*lines, *[[*v, *extra] for v in variants]])
    hydra_lines = [printed_line(r["stderr"]) for r in cookbook]
    hydra = run_forms("hydra", hydra_lines)
    expected = [(f"+recipe={c.recipe.name}", f"name: {c.recipe.name}") for c in commands] + list(variants.values())
    for (first, shown), ours, theirs, line in zip(expected, cookbook, hydra, hydra_lines, strict=True):
        assert line[0] == first and ours["code"] == theirs["code"], (line, ours["stderr"], theirs["stderr"])
        assert ours["stdout"] == theirs["stdout"], line  # byte for byte
        if first.split("=")[1].split("/@")[0] in SHIPPED or "toy" in first:
            assert ours["code"] == 0 and shown in ours["stdout"], (line, ours["stderr"][-800:])
        else:  # a recipe that cannot resolve without its inputs fails alike in both forms
            assert without_our_lines(ours["stderr"]) == without_our_lines(theirs["stderr"]), line


def test_profile_dry_run_matches_cluster_option(tmp_path):
    env_file = tmp_path / "env.toml"
    env_file.write_text(ENV_TOML)
    env = {"NEMOTRON_ENV_FILE": str(env_file)}
    common = [f"hydra.run.dir={tmp_path}/run", f"paths.output_root={tmp_path}", "tracker=none"]
    cookbook = run_forms(
        "cookbook",
        [
            ["gpt", "pretrain", "-b", "my-cluster", "-d", *common],
            ["gpt", "pretrain", "-r", "my-cluster", "-d", *common],
            ["gpt", "pretrain", "-b", "big", "-d", *common],
            [
                "gpt",
                "pretrain",
                "-b",
                "my-cluster",
                "-d",
                *common,
                f"hydra.sweep.dir={tmp_path}/s",
                "-m",
                "train.seed=1,2",
            ],
        ],
        env,
    )
    hydra = run_forms(
        "hydra",
        [
            ["+recipe=gpt/pretrain", "cluster=my-cluster", *common, "dry_run=true"],
            ["+recipe=gpt/pretrain", "cluster=my-cluster", "cluster.wait=true", *common, "dry_run=true"],
            ["+recipe=gpt/pretrain", "cluster=big", *common, "dry_run=true"],
            [
                "+recipe=gpt/pretrain",
                "cluster=my-cluster",
                *common,
                f"hydra.sweep.dir={tmp_path}/s",
                "-m",
                "train.seed=1,2",
                "dry_run=true",
            ],
        ],
        env,
    )
    assert [r["stdout"] for r in cookbook] == [r["stdout"] for r in hydra]
    assert all("#SBATCH --" + flag in cookbook[2]["stdout"] for flag in ("exclusive", "mem=0", "constraint=h100"))
    assert "#SBATCH --array=0-1%2" in cookbook[3]["stdout"]  # -m passes through: one job array of two members
    batch, run = cookbook[0]["stdout"], cookbook[1]["stdout"]
    assert "#SBATCH --partition=debug" in batch and "#SBATCH --partition=interactive" in run
    assert "#SBATCH --time=10" in batch and "export NCCL_DEBUG=WARN" in batch
    assert printed_line(cookbook[0]["stderr"])[:2] == ["+recipe=gpt/pretrain", "cluster=my-cluster"]


def test_tree_takes_new_recipes_from_their_runspec(tmp_path, monkeypatch):
    root = tmp_path / "recipes"
    for name in ("toy/rl", "data/prep_rl"):
        script = root / name / "train.py"
        script.parent.mkdir(parents=True)
        script.write_text(f'"""Toy {name}."""\n# /// script\n# [tool.runspec]\n# name = "{name}"\n# ///\n')
    monkeypatch.setenv("NEMOTRON_RECIPE_PATH", str(root))
    tree = build_tree()
    assert tree.children["toy"].children["rl"].command.recipe.name == "toy/rl"
    prep = tree.children["nano3"].children["data"].children["prep"].children
    assert prep["rl"].command.recipe.name == "data/prep_rl" and prep["rl"].command.summary == "Toy data/prep_rl."
    assert prep["sft"].command.overrides == ("model=nano3_tiny",)
    pipe = tree.children["nano3"].children["pipe"].command  # conf/pipeline/nano3.yaml and nemotron.pipe exist
    assert pipe.module == "nemotron.pipe" and pipe.overrides == ("pipeline=nano3",)
    assert "pipe" not in tree.children["toy"].children  # no conf/pipeline/toy.yaml


def test_help_lists_commands_profiles_and_the_hydra_line(tmp_path):
    env_file = tmp_path / "env.toml"
    env_file.write_text(ENV_TOML)
    env = {**os.environ, "NEMOTRON_ENV_FILE": str(env_file)}
    top = subprocess.run(
        [sys.executable, "-m", "nemotron.cookbook.cli", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert top.returncode == 0 and re.search(r"^  nano3 .*pretrain", top.stdout, re.M), top.stdout + top.stderr
    assert "base-slurm, my-cluster" in top.stdout
    leaf = subprocess.run(
        [sys.executable, "-m", "nemotron.cookbook.cli", "nano3", "data", "prep", "sft", "-b", "my-cluster", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert "python -m nemotron.train +recipe=data/prep_sft model=nano3_tiny cluster=my-cluster" in leaf.stdout


@pytest.mark.parametrize("section", ['[a]\nextends = "a"\n', '[a]\nextends = "b"\n'])
def test_bad_extends_is_one_line(tmp_path, section):
    from nemotron.config.validate import ConfigError
    from nemotron.cookbook.envfile import load_env_file

    (tmp_path / "env.toml").write_text(section)
    with pytest.raises(ConfigError, match=r"env.toml:2: profile 'a' extends '[ab]'"):
        load_env_file(tmp_path / "env.toml").resolve("a")


def test_profile_keys_map_onto_cluster_settings(tmp_path):
    from nemotron.cookbook.envfile import load_env_file
    from nemotron.cookbook.profile import cluster_option

    (tmp_path / "env.toml").write_text(
        ENV_TOML
        + '\n[gpu-box]\nextends = "my-cluster"\ntime = "1-02:03:30"\nmem = "0"\nexclusive = true\n'
        + 'container_image = "nvcr.io/nvidia/pytorch:25.09-py3"\nmounts = ["/lustre:/lustre"]\n'
        + 'env_vars = ["A=1", "B=x=y"]\nsetup_lines = "module load x\\nsource env.sh"\nqos = "high"\n'
        + 'ntasks_per_node = 8\ngpu_memory_gb = 80\nconstraint = "h100"\n'
    )
    node, notes = cluster_option(load_env_file(tmp_path / "env.toml").resolve("gpu-box"))
    cluster, launcher = node["cluster"], node["hydra"]["launcher"]
    assert notes == [  # every key is read; the reserved [wandb] section is not
        f"env.toml: section [wandb] is not used here (tracking is MLflow here: tracker=mlflow); {tmp_path}/env.toml:1"
    ]
    assert cluster["name"] == "gpu-box" and cluster["executor"] == "slurm"
    assert cluster["time_limit"] == 24 * 60 + 2 * 60 + 4  # rounded up to whole minutes
    assert launcher == {"additional_parameters": {"mem": "0", "exclusive": True}, "constraint": "h100"}
    assert cluster["container_image"].startswith("nvcr.io") and cluster["pyxis"] is True
    assert cluster["container_mounts"] == ["/lustre:/lustre"] and cluster["env"] == {"A": "1", "B": "x=y"}
    assert cluster["setup"] == ["module load x", "source env.sh"] and cluster["qos"] == "high"
    assert node["resources"] == {
        "nodes": 1,
        "gpus_per_node": "${nemotron.min:${recipe.gpus_per_node},${cluster.gpus_per_node}}",
        "procs_per_node": 8,
    }
    assert cluster["gpu_memory_gb"] == 80 and cluster["partition"].startswith("${nemotron.by_wait:")


def test_env_file_is_found_walking_up_to_the_project_root(tmp_path, monkeypatch):
    from nemotron.cookbook.envfile import find_env_file

    monkeypatch.delenv("NEMOTRON_ENV_FILE", raising=False)
    deep = tmp_path / "project" / "sub" / "dir"
    deep.mkdir(parents=True)
    (tmp_path / "env.toml").write_text("[outside]\n")  # above the project root: never read
    (tmp_path / "project" / "pyproject.toml").write_text("")
    assert find_env_file(deep) is None
    (tmp_path / "project" / "env.toml").write_text("[mine]\n")
    assert find_env_file(deep) == tmp_path / "project" / "env.toml"
    monkeypatch.setenv("NEMOTRON_ENV_FILE", str(tmp_path / "env.toml"))
    assert find_env_file(deep) == tmp_path / "env.toml"


DGX_PROFILE = """\
[dgx]
executor = "slurm"
account = "my-account"
partition = "batch"
gpus_per_node = 8
gpu_memory_gb = 80
transformer_engine = true
mamba_ssm = true
"""
"""A cookbook-style env.toml profile for a cluster of 8 x H100 80GB nodes (our image: TE and mamba_ssm)."""


def test_quick_start_tiny_trains_here_and_default_prints_the_full_scale_job(tmp_path):
    (tmp_path / "env.toml").write_text(DGX_PROFILE)
    prepared_blend(tmp_path / "cache", write_word_tokenizer(tmp_path / "tokenizer.json"))
    out = f"paths.output_root={tmp_path / 'out'}"
    tiny, full = run_forms(
        "cookbook",
        [
            ["nano3", "pretrain", "-c", "tiny", "train.steps=2", "tracker=none", out],
            ["nano3", "pretrain", "-c", "default", "--run", "dgx", "-d", out, f"paths.cache_dir={tmp_path / 'cache'}"],
        ],
        {"NEMOTRON_ENV_FILE": str(tmp_path / "env.toml")},
    )
    assert tiny["code"] == 0 and "done | 2/2 steps" in tiny["stdout"], tiny["stderr"][-2000:]
    assert printed_line(tiny["stderr"])[0] == "+recipe=nano3/pretrain/tiny"
    job = full["stdout"]
    assert full["code"] == 0, full["stderr"][-2000:]
    assert printed_line(full["stderr"])[:3] == ["+recipe=nano3/pretrain/default", "cluster=dgx", "cluster.wait=true"]
    assert "num_layers: 52" in job and "seq_length: 8192" in job and "global_batch_size: 3072" in job
    for layout in ("tensor_model_parallel_size: 2", "expert_model_parallel_size: 8", "sequence_parallel: true"):
        assert layout in job
    assert "#SBATCH --nodes=8" in job and "#SBATCH --gpus-per-node=8" in job
    assert re.search(r"^  total +[\d.]+ GiB  of 76.0 GiB usable: fits$", job, re.M), job[-3000:]
    assert "TP2 PP1 CP1 EP8 DP32, micro batch 2" in job


def test_shared_data_prep_prepares_for_the_model_of_the_config_named_by_c():
    sft = build_tree().children["nano3"].children["data"].children["prep"].children["sft"].command
    assert hydra_argv(sft, parse_options([]))[:2] == ["+recipe=data/prep_sft", "model=nano3_tiny"]
    assert hydra_argv(sft, parse_options(["-c", "default"]))[:2] == ["+recipe=data/prep_sft/default", "model=nano3"]
