"""Hydra's conventions work on our entry point: --help, --info, --cfg, --resolve, override grammar, -m."""

from __future__ import annotations

import sys

import yaml

from nemotron.common.paths import CONF_DIR, RECIPES_DIR


def test_help_lists_recipes(cli):
    out = cli("--help").stdout
    assert "== Recipes (+recipe=<name>) ==" in out
    assert "nano3/pretrain" in out and str(RECIPES_DIR / "nano3" / "pretrain" / "train.py") in out
    models = ", ".join(sorted(p.stem for p in CONF_DIR.glob("model/*.yaml")))
    assert f"model: {models}" in out


def test_info_searchpath_shows_recipe_roots(cli):
    out = cli("--info", "searchpath").stdout
    assert "nemotron-runspec" in out and f"runspec://{RECIPES_DIR}" in out


def test_cfg_job_prints_composed_config(cli):
    result = cli("+recipe=nano3/pretrain", "--cfg", "job")
    cfg = yaml.safe_load(result.stdout)
    assert cfg["recipe"]["name"] == "nano3/pretrain"
    assert cfg["model"]["arch"] == "hybrid"
    assert cfg["resources"]["gpus_per_node"].startswith("${")  # not resolved without --resolve


def test_cfg_resolve_resolves_interpolations(cli):
    cfg = yaml.safe_load(cli("+recipe=nano3/pretrain", "--cfg", "job", "--resolve").stdout)
    assert isinstance(cfg["resources"]["gpus_per_node"], int)
    assert cfg["data"]["cache_dir"] == ".cache/nemotron/data/tiny"


def test_cfg_hydra_shows_hydra_node(cli):
    out = cli("+recipe=nano3/pretrain", "--cfg", "hydra").stdout
    assert "runtime:" in out and "choices:" in out


def test_override_grammar_add_force_delete(cli):
    cfg = yaml.safe_load(
        cli("+recipe=gpt/pretrain", "++train.steps=3", "~tracker", "model.ffn_hidden_size=null", "--cfg", "job").stdout
    )
    assert cfg["train"]["steps"] == 3
    assert cfg["tracker"]["kind"] == "none"  # group removed: the schema default applies
    assert cfg["model"]["ffn_hidden_size"] is None


def test_shell_completion_offers_group_options(cli, tmp_path):
    import os
    import subprocess

    exe = os.path.join(os.path.dirname(sys.executable), "nemotron-train")
    def complete(line: str) -> list:
        env = {**os.environ, "COMP_LINE": line}
        return subprocess.run([exe, "-sc", "query=bash"], env=env, capture_output=True, text=True).stdout.split()

    out = complete("nemotron-train model=")
    assert "model=gpt_tiny" in out and "model=nano3_tiny" in out
    configs = sorted(p.stem for p in (RECIPES_DIR / "nano3" / "pretrain" / "config").glob("*.yaml"))
    want = ["+recipe=nano3/pretrain", *(f"+recipe=nano3/pretrain/{c}" for c in configs)]
    assert complete("nemotron-train +recipe=nano3/pr") == want  # recipe names and their -c configs


def test_dry_run_prints_config_and_command_and_runs_nothing(cli, tmp_path):
    result = cli("+recipe=gpt/pretrain", "dry_run=true")
    assert result.returncode == 0, result.stderr
    assert "# resolved config" in result.stdout and "# would run" in result.stdout
    command = result.stdout.strip().splitlines()[-1]
    assert command.startswith(sys.executable)
    assert str(RECIPES_DIR / "gpt" / "pretrain" / "train.py") in command and "--config" in command
    written = [str(p) for p in (tmp_path / "outputs").rglob("*")]
    assert written == [], written  # no config, log or run directory, and none of Hydra's .hydra/ records


def test_dry_run_with_two_ranks_uses_the_elastic_launcher(cli):
    result = cli("+recipe=gpt/pretrain", "dry_run=true", "resources.procs_per_node=2",
                 "parallel.tensor_model_parallel_size=2")
    command = result.stdout.strip().splitlines()[-1]
    assert "-m torch.distributed.run --standalone --nnodes=1 --nproc-per-node=2 --no-python" in command


def test_multirun_sweep_runs_each_member(cli):
    result = cli("+recipe=gpt/pretrain", "dry_run=true", "-m", "optim.lr=0.001,0.003")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("# would run") == 2
    assert "lr: 0.001" in result.stdout and "lr: 0.003" in result.stdout


def test_compose_path_imports_no_heavy_packages(cli):
    result = cli("+recipe=nano3/pretrain", "--cfg", "job", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert "hydra" in imported  # the measurement works
    assert not imported & {"torch", "megatron", "mlflow"}, imported & {"torch", "megatron", "mlflow"}


def test_dry_run_redacts_secrets(cli):
    result = cli("+recipe=gpt/pretrain", "dry_run=true", "+cluster.env.HF_TOKEN=hf_abcdef123456",
                 "+cluster.env.PLAIN=visible")
    assert result.returncode == 0, result.stderr
    assert "hf_abcdef123456" not in result.stdout
    assert "HF_TOKEN: <redacted>" in result.stdout and "export HF_TOKEN='<redacted>'" in result.stdout
    assert "export PLAIN=visible" in result.stdout


def test_dry_run_sweep_creates_no_tracking_store(cli, tmp_path):
    result = cli("+recipe=gpt/pretrain", "dry_run=true", "tracker=mlflow", "-m", "optim.lr=0.001,0.003")
    assert result.returncode == 0, result.stderr
    assert "sweep parent run" not in result.stdout + result.stderr
    assert not list(tmp_path.rglob("mlflow.db"))


def test_local_sweep_with_one_bad_member_runs_no_member(cli, tmp_path):
    result = cli("+recipe=gpt/pretrain", "tracker=none", "train.steps=2", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                 "-m", "train.global_batch_size=8,7")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "(sweep member(s) 1 of 2; nothing started)" in result.stderr
    assert not (tmp_path / "sweep" / "0" / "train.log").exists()  # member 0 was valid, and still did not run


def test_sweep_over_an_unknown_key_is_one_line(cli):
    result = cli("+recipe=gpt/pretrain", "dry_run=true", "-m", "optim.lrr=0.001,0.003")
    assert result.returncode == 2
    assert result.stderr == "error: optim.lrr: unknown key (did you mean lr?) (all 2 sweep members; nothing started)\n"


def test_sweep_members_sharing_a_run_dir_are_refused(cli, tmp_path):
    result = cli("+recipe=gpt/pretrain", "dry_run=true", "hydra.sweep.subdir=same", "-m", "optim.lr=0.001,0.003")
    assert result.returncode == 2
    assert "sweep members 0..1 would share the run dir" in result.stderr and result.stderr.count("\n") == 1
    result = cli("+recipe=gpt/pretrain", "dry_run=true", f"run_dir={tmp_path / 'one'}", "-m", "optim.lr=0.001,0.003")
    assert result.returncode == 2 and f"would share the run dir {tmp_path / 'one'}" in result.stderr
