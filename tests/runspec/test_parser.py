"""Tests for nemotron.runspec.parser: valid blocks parse to the right values; discovery finds recipes.
(Invalid blocks: test_parser_errors.py.)

Run: .venv/bin/python -m pytest tests/runspec -q
"""

from __future__ import annotations

from pathlib import Path

import pytest
from parser_support import write

from nemotron.runspec.parser import Runspec, RunspecError, discover, parse_file, parse_text

FIXTURES = Path(__file__).parent / "fixtures"


# ---- valid blocks ----

def test_minimal_block_gets_every_default(tmp_path):
    script = write(tmp_path / "r" / "x.py", """
        #!/usr/bin/env python3
        # /// script
        # [tool.runspec]
        # name = "demo/minimal"
        # ///
        print("hi")
    """)
    spec = parse_file(script)
    assert spec == Runspec(name="demo/minimal", script=script, line=2,
                           config_dir=(tmp_path / "r" / "config").resolve())
    assert (spec.schema, spec.docs, spec.image, spec.setup) == ("1", "", None, "")
    assert (spec.launch, spec.cmd, spec.workdir) == ("torchrun", None, None)
    assert (spec.config_default, spec.config_format) == ("default", "omegaconf")
    assert (spec.nodes, spec.gpus_per_node, dict(spec.env)) == (1, 8, {})
    assert (spec.dependencies, spec.requires_python) == ((), None)
    assert spec.config_file() is None


def test_full_block_sets_every_field(tmp_path):
    script = write(tmp_path / "recipes" / "gpt" / "pretrain" / "train.py", """
        # /// script
        # requires-python = ">=3.11"
        # dependencies = ["numpy>=1.24", "tokenizers"]
        # [tool.runspec]
        # schema = "1"
        # docs = "https://example.org/runspec/v1"
        # name = "gpt/pretrain-1b"
        # image = "nvcr.io/nvidia/nemo:25.11"
        # setup = "  Megatron-Core preinstalled.  "
        # [tool.runspec.run]
        # launch = "direct"
        # cmd = "python {script} --config {config}"
        # workdir = "/workspace"
        # [tool.runspec.config]
        # dir = "../conf"
        # default = "tiny"
        # format = "json"
        # [tool.runspec.resources]
        # nodes = 2
        # gpus_per_node = 4
        # [tool.runspec.env]
        # NCCL_DEBUG = "WARN"
        # CUDA_DEVICE_MAX_CONNECTIONS = "1"
        # ///
    """)
    config = write(tmp_path / "recipes" / "gpt" / "conf" / "tiny.json", "{}")
    spec = parse_file(script)
    assert spec == Runspec(
        name="gpt/pretrain-1b", script=script, line=1, config_dir=config.parent.resolve(),
        schema="1", docs="https://example.org/runspec/v1", image="nvcr.io/nvidia/nemo:25.11",
        setup="Megatron-Core preinstalled.", launch="direct",
        cmd="python {script} --config {config}", workdir="/workspace",
        config_default="tiny", config_format="json", nodes=2, gpus_per_node=4,
        env={"NCCL_DEBUG": "WARN", "CUDA_DEVICE_MAX_CONNECTIONS": "1"},
        dependencies=("numpy>=1.24", "tokenizers"), requires_python=">=3.11",
    )
    assert spec.config_file() == config.resolve()


def test_cookbook_style_block_parses_and_ignores_other_tools():
    script = FIXTURES / "cookbook" / "super3" / "rl" / "train.py"
    spec = parse_file(script)
    assert spec.name == "super3/rl"
    assert spec.line == 2
    assert spec.docs.endswith("/docs/runspec/v1/spec.md")
    assert spec.image == "nvcr.io/nvidia/nemo-rl:v0.5.0.nemotron_3_super"
    assert spec.setup.startswith("nemo-rl is installed") and spec.setup.endswith("nodes = 99")
    assert (spec.launch, spec.cmd, spec.workdir) == (
        "ray", "uv run python {script} --config {config}", "/opt/nemo-rl")
    assert (spec.config_dir, spec.config_default, spec.config_format) == (
        (script.parent / "config").resolve(), "default", "omegaconf")
    assert (spec.nodes, spec.gpus_per_node) == (4, 8)
    assert dict(spec.env) == {"NCCL_NVLS_ENABLE": "0"}
    assert spec.dependencies == ("nemo-run>=0.5", "omegaconf==2.3.0")
    assert spec.requires_python == ">=3.10"
    assert spec.config_file() == (script.parent / "config" / "default.yaml").resolve()


def test_config_file_falls_back_to_yml(tmp_path):
    script = write(tmp_path / "x.py", """
        # /// script
        # [tool.runspec]
        # name = "a"
        # ///
    """)
    yml = write(tmp_path / "config" / "default.yml", "a: 1\n")
    assert parse_file(script).config_file() == yml.resolve()


def test_gpus_per_node_accepts_gpu_like_the_cookbook(tmp_path):
    # Nemotron's embed/finetune recipe writes gpus_per_node = "gpu" (torchrun: one process per GPU).
    script = write(tmp_path / "x.py", """
        # /// script
        # [tool.runspec.resources]
        # gpus_per_node = "gpu"
        # ///
    """)
    assert parse_file(script).gpus_per_node == "gpu"


def test_empty_image_means_none_and_shell_braces_are_not_placeholders(tmp_path):
    script = write(tmp_path / "x.py", """
        # /// script
        # [tool.runspec]
        # image = ""
        # [tool.runspec.run]
        # cmd = "cd ${HOME} && python {script} --config {config} {{literal}}"
        # ///
    """)
    spec = parse_file(script)
    assert spec.image is None
    assert spec.cmd == "cd ${HOME} && python {script} --config {config} {{literal}}"


def test_launch_python_is_read_as_direct(tmp_path):
    # Nemotron's modelopt prune/distill recipes write launch = "python".
    script = write(tmp_path / "x.py", """
        # /// script
        # [tool.runspec.run]
        # launch = "python"
        # ///
    """)
    assert parse_file(script).launch == "direct"


# ---- names ----

@pytest.mark.parametrize("rel, name", [
    ("nano3/pretrain/train.py", "nano3/pretrain"),
    ("nano3/pretrain/prep.py", "nano3/pretrain/prep"),
    ("nano3/eval.py", "nano3/eval"),
])
def test_empty_name_is_derived_from_path_under_root(tmp_path, rel, name):
    script = write(tmp_path / "recipes" / rel, """
        # /// script
        # [tool.runspec]
        # name = ""
        # ///
    """)
    assert parse_file(script, tmp_path / "recipes").name == name


def test_absent_tables_give_defaults_and_a_derived_name_without_root(tmp_path):
    script = write(tmp_path / "recipes" / "nano3" / "pretrain" / "train.py", """
        # /// script
        # [tool.runspec]
        # ///
    """)
    spec = parse_file(script)
    assert spec.name == "pretrain"
    assert (spec.launch, spec.nodes, spec.gpus_per_node, spec.config_format) == (
        "torchrun", 1, 8, "omegaconf")


# ---- no runspec ----

def test_file_without_block_returns_none(tmp_path):
    assert parse_file(write(tmp_path / "plain.py", "print('no metadata')\n")) is None


def test_block_without_runspec_returns_none(tmp_path):
    script = write(tmp_path / "uv_only.py", """
        # /// script
        # dependencies = ["requests"]
        # [tool.uv]
        # exclude-newer = "2025-01-01T00:00:00Z"
        # ///
    """)
    assert parse_file(script) is None


def test_parse_text_needs_no_file(tmp_path):
    text = '# /// script\n# [tool.runspec]\n# name = "t/x"\n# ///\n'
    spec = parse_text(text, tmp_path / "virtual.py")
    assert (spec.name, spec.script, spec.line) == ("t/x", tmp_path / "virtual.py", 1)


def test_discover_finds_recipes_and_skips_hidden_and_cache(tmp_path):
    block = '# /// script\n# [tool.runspec]\n# name = "{}"\n# ///\n'
    root = tmp_path / "recipes"
    write(root / "nano3" / "pretrain" / "train.py", block.format(""))
    write(root / "gpt" / "pretrain" / "train.py", block.format("gpt/pretrain"))
    write(root / "gpt" / "helpers.py", "def helper(): ...\n")
    write(root / ".hidden" / "train.py", block.format("hidden/one"))
    write(root / "gpt" / "__pycache__" / "train.py", block.format("cached/one"))
    found = discover([root])
    assert list(found) == ["gpt/pretrain", "nano3/pretrain"]
    assert found["nano3/pretrain"].script == root / "nano3" / "pretrain" / "train.py"


def test_discover_rejects_duplicate_names_naming_both_files(tmp_path):
    block = '# /// script\n# [tool.runspec]\n# name = "nano3/pretrain"\n# ///\n'
    first = write(tmp_path / "a" / "one.py", block)
    second = write(tmp_path / "b" / "two.py", "import os\n" + block)
    with pytest.raises(RunspecError) as caught:
        discover([tmp_path / "a", tmp_path / "b"])
    msg = str(caught.value)
    assert msg.startswith(f"{second}:2: tool.runspec.name: ")
    assert f"{first}:1" in msg and "'nano3/pretrain'" in msg
