"""`python -m nemotron.pipe`: bad input is one line naming the stage and the key, exit 2, nothing started;
the dry run prints every stage (directory, inputs, outputs, differences, command or batch script) and
the graph. No training here: composing and validating only (in-process, as the entry point runs)."""

from __future__ import annotations

import pytest
from pipe_support import CKPT_OUT, DATA_OUT, PREP, PRETRAIN, pipe, stage, write_pipeline

from nemotron.pipe.cli import main


def run_main(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def root(tmp_path):
    return tmp_path / "outputs"


def refused(capsys, root, *args):
    """Exit 2, exactly one `error:` line on stderr (returned), no traceback, nothing under the output root."""
    code, out, err = run_main(capsys, *args, f"paths.output_root={root}", "tracker=none")
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    assert not root.exists(), list(root.rglob("*"))
    return lines[0]


def test_unknown_recipe_names_the_stage_and_suggests(capsys, root, tmp_path):
    path = write_pipeline(
        tmp_path / "p.yaml",
        [
            stage("data", "data/prep", PREP, produces=DATA_OUT),
            stage("pretrain", "gpt/pretrian", PRETRAIN, ["pretrain_data"]),
        ],
    )
    line = refused(capsys, root, f"pipeline={path}")
    assert "stage pretrain: recipe='gpt/pretrian': no such recipe" in line and "gpt/pretrain" in line


def test_consumed_artifact_nobody_produces_and_the_registry_lacks(capsys, root, tmp_path):
    path = write_pipeline(tmp_path / "p.yaml", [stage("pretrain", "gpt/pretrain", PRETRAIN, ["pretrain_data"])])
    line = refused(capsys, root, f"pipeline={path}")
    assert "stage pretrain: consumes pretrain_data: no stage produces it" in line
    assert "no artifact named 'pretrain_data'" in line


def test_cycle_is_named_with_its_stages(capsys, root, tmp_path):
    path = write_pipeline(
        tmp_path / "p.yaml",
        [
            stage("a", "gpt/pretrain", consumes=["y"], produces={"x": {"path": "{stage_dir}/checkpoints"}}),
            stage("b", "gpt/sft", consumes=["x"], produces={"y": {"path": "{stage_dir}/checkpoints"}}),
        ],
    )
    line = refused(capsys, root, f"pipeline={path}")
    assert "cycle" in line and ("a -> b -> a" in line or "b -> a -> b" in line)


def test_two_stages_producing_one_name(capsys, root, tmp_path):
    path = write_pipeline(
        tmp_path / "p.yaml",
        [stage("a", "data/prep", PREP, produces=DATA_OUT), stage("b", "data/prep", PREP, produces=DATA_OUT)],
    )
    line = refused(capsys, root, f"pipeline={path}")
    assert "stage b: produces.pretrain_data: already produced by stage a" in line


def test_consuming_what_a_later_stage_produces(capsys, root, tmp_path):
    path = write_pipeline(
        tmp_path / "p.yaml",
        [
            stage("pretrain", "gpt/pretrain", PRETRAIN, ["pretrain_data"]),
            stage("data", "data/prep", PREP, produces=DATA_OUT),
        ],
    )
    line = refused(capsys, root, f"pipeline={path}")
    assert "stage pretrain: consumes pretrain_data: produced by stage data, which comes later" in line


@pytest.mark.parametrize(
    ("override", "wanted"),
    [
        ("pretrain.train.stepz=3", ["stage pretrain:", "train.stepz"]),
        ("pretrain.train.steps=0", ["stage pretrain:", "train.steps=0", "out of range"]),
        ("pretrian.train.steps=3", ["pretrian", "neither a stage nor a config key", "pretrain"]),
        ("pipeline.stages=1", ["pipeline.stages=1", "neither a stage nor a config key"]),
    ],
)
def test_bad_stage_override_names_stage_and_key(capsys, root, override, wanted):
    line = refused(capsys, root, "pipeline=nano3", override)
    assert all(w in line for w in wanted), line


def test_unknown_pipeline_and_unknown_schema_key(capsys, root, tmp_path):
    assert "pipeline=nope: no such pipeline (available: gpt, nano3)" in refused(capsys, root, "pipeline=nope")
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nstages:\n  - name: a\n    recipes: gpt/pretrain\n")
    line = refused(capsys, root, f"pipeline={bad}")
    assert str(bad) in line and "recipes" in line


def test_placeholder_that_is_not_consumed(capsys, root, tmp_path):
    path = write_pipeline(tmp_path / "p.yaml", [stage("pretrain", "gpt/pretrain", ["data.blend_file={nope}/b.json"])])
    line = refused(capsys, root, f"pipeline={path}")
    assert "stage pretrain: overrides[0]" in line and "{nope} is not an artifact it consumes" in line


def test_dry_run_prints_stages_differences_commands_and_graph(capsys, root):
    code, out, err = run_main(
        capsys, "pipeline=nano3", "dry_run=true", f"paths.output_root={root}", "tracker=none", "pretrain.train.steps=7"
    )
    assert code == 0, err
    for name, recipe in [
        ("data", "data/prep"),
        ("pretrain", "nano3/pretrain"),
        ("sft_data", "data/prep_sft"),
        ("sft", "nano3/sft"),
        ("rl", "nano3/rl"),
    ]:
        assert f"stage {name} ({recipe})" in out
        assert f"+recipe={recipe} " in out
    assert "train.steps: 30 -> 7" in out  # the stage override, and only in its stage
    assert out.count("train.steps:") == 1
    assert "checked when it starts: checkpoint.pretrained=" in out  # SFT's weights: pretrain writes them
    graph = out.split("== dependency graph", 1)[1]
    for edge in (
        "data --pretrain_data--> pretrain",
        "pretrain --base_model--> sft",
        "sft_data --sft_data--> sft",
        "sft --sft_model--> rl",
    ):
        assert edge in graph
    assert not root.exists()


def test_slurm_dry_run_shows_each_batch_script_with_its_dependency(capsys, root, monkeypatch):
    monkeypatch.delenv("SLURM_CONF", raising=False)
    code, out, err = run_main(
        capsys,
        "pipeline=gpt",
        "dry_run=true",
        f"paths.output_root={root}",
        "tracker=none",
        "cluster=slurm_test",
        "sft.train.steps=3",
    )
    assert code == 0, err
    assert out.count("#!/bin/bash") == 8  # data, pretrain, sft_data, sft, rl and an eval after each model
    assert "#SBATCH --dependency='afterok:<job id of pretrain>:<job id of sft_data>'" in out
    assert "#SBATCH --dependency='afterok:<job id of data>:<job id of rl>'" in out  # eval_rl
    assert out.count("#SBATCH --kill-on-invalid-dep=yes") == 7  # every stage but the first
    assert not root.exists()


def test_an_artifact_already_in_the_registry_may_be_consumed(capsys, root, tmp_path):
    from nemotron.tracking.registry import Registry, content_hash

    blend_dir = tmp_path / "corpus"
    blend_dir.mkdir()
    (blend_dir / "blend.json").write_text("{}")
    Registry(tmp_path / "reg.json").register("data/mine", "data", blend_dir, content_hash([blend_dir]), {})
    path = write_pipeline(
        tmp_path / "p.yaml",
        [
            stage(
                "pretrain",
                "gpt/pretrain",
                ["data=prepared", "data.blend_file={data/mine}/blend.json"],
                ["data/mine"],
                CKPT_OUT,
            )
        ],
    )
    code, out, err = run_main(
        capsys,
        f"pipeline={path}",
        "dry_run=true",
        f"paths.output_root={root}",
        "tracker=none",
        f"tracker.registry={tmp_path / 'reg.json'}",
    )
    # The registered blend is checked now (it is not produced by a stage): an empty blend file is refused.
    assert code == 2 and "stage pretrain: data.blend_file" in err and str(blend_dir) in err, out + err


def test_the_entry_point_as_a_subprocess(tmp_path):
    result = pipe("pipeline=nano3", "sft.train.stepz=1", f"paths.output_root={tmp_path / 'o'}")
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: stage sft:") and "train.stepz" in line


def test_the_cookbook_command_runs_the_pipeline(tmp_path):
    import subprocess
    import sys

    from pipe_support import REPO

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nemotron.cookbook.cli",
            "gpt",
            "pipe",
            "--dry-run",
            f"paths.output_root={tmp_path / 'o'}",
            "tracker=none",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(f"# = python -m nemotron.pipe pipeline=gpt paths.output_root={tmp_path / 'o'}")
    assert "# pipeline gpt: 8 stage(s), validated; nothing started" in result.stdout
