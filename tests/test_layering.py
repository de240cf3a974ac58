"""Dependencies point one way, checked transitively: each side is imported in a fresh process and
`sys.modules` is inspected afterwards.

- The compose/launch layer (the CLI, config, runspec, every module of nemotron.launchers, the Hydra
  plugins) loads no torch, megatron or mlflow: submitting must not pay for, or depend on, the trainer.
- The training side (nemotron.runtime.pretrain, the recipes' runtime, tracking) loads no Hydra and no
  launch code: recipes run from a resolved config alone, on a Slurm node or in a container.
A static check of each training-side file's own imports stays as a fast, precise pointer to the culprit.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCH_MODULES = sorted(
    f"nemotron.launchers.{p.stem}" for p in (REPO / "launchers").glob("*.py") if p.stem != "__init__"
)
COOKBOOK_MODULES = sorted(
    f"nemotron.cookbook.{p.stem}" for p in (REPO / "nemotron" / "cookbook").glob("*.py") if p.stem != "__init__"
)
PIPE_MODULES = sorted(
    f"nemotron.pipe.{p.stem}" for p in (REPO / "nemotron" / "pipe").glob("*.py") if p.stem != "__main__"
)
COMPOSE_LAUNCH = [
    "nemotron.train",
    "nemotron.jobs",
    "nemotron.config.compose",
    "nemotron.config.validate",
    "nemotron.runspec.source",
    "nemotron.config.hydra_compat",
    "hydra_plugins.nemotron_launcher.nemotron_launcher",
    "hydra_plugins.nemotron_runspec.runspec_plugin",
    "hydra_plugins.nemotron_envtoml.envtoml_plugin",
    *LAUNCH_MODULES,
    *COOKBOOK_MODULES,
    *PIPE_MODULES,
]
HEAVY = ("torch", "megatron", "mlflow", "transformers", "safetensors")
TRAINING_ENTRY = [
    "nemotron.runtime.stages.pretrain",
    "nemotron.runtime.train.loop",
    "nemotron.runtime.script",
    "nemotron.tracking",
    "nemotron.hf.importer",
    "nemotron.hf.exporter",
]
LAUNCH_SIDE = (
    "hydra",
    "hydra_plugins",
    "nemotron.launchers",
    "nemotron.train",
    "nemotron.cli",
    "nemotron.runspec",
    "nemotron.cookbook",
    "nemotron.config.compose",
    "nemotron.config.hydra_compat",
    "nemotron.jobs",
    "nemotron.pipe",
)
TRAINING_SIDE = sorted(
    [
        *REPO.glob("recipes/**/*.py"),
        *REPO.glob("nemotron/runtime/**/*.py"),
        *REPO.glob("nemotron/tracking/*.py"),
        *REPO.glob("nemotron/hf/*.py"),
    ]
)


def loaded_after_import(modules: list) -> list:
    """Top-level and full names of every module in sys.modules after importing `modules` in a fresh python."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_launch_package_found():
    assert "nemotron.launchers.slurm" in LAUNCH_MODULES and "nemotron.launchers.scheduler" in LAUNCH_MODULES


def test_compose_and_launch_layer_loads_no_heavy_package():
    loaded = loaded_after_import(COMPOSE_LAUNCH)
    assert "hydra" in loaded and "nemotron.launchers.sweep" in loaded  # the imports happened
    assert "nemotron.cookbook.cli" in loaded and "hydra_plugins.nemotron_envtoml.envtoml_plugin" in loaded
    assert "nemotron.pipe.slurm" in loaded and "nemotron.pipe.tracking" in loaded
    heavy = sorted({m for m in loaded if m.split(".")[0] in HEAVY})
    assert not heavy, f"importing the compose/launch layer loads {heavy[:10]}"


@pytest.mark.parametrize("entry", TRAINING_ENTRY)
def test_training_side_loads_no_hydra_and_no_launch_code(entry):
    loaded = loaded_after_import([entry])
    assert entry in loaded
    bad = sorted(m for m in loaded if m.split(".")[0] in LAUNCH_SIDE or m.startswith(LAUNCH_SIDE))
    assert not bad, f"importing {entry} loads {bad[:10]}"


def test_pretrain_really_loads_the_trainer_and_no_hugging_face_package():
    # the check above would pass vacuously if pretrain were lazy; transformers is for conversion only
    loaded = loaded_after_import(["nemotron.runtime.stages.pretrain", "nemotron.runtime.stages.sft"])
    assert "torch" in loaded
    assert not sorted(m for m in loaded if m.split(".")[0] in ("transformers", "safetensors"))


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_training_side_files_found():
    assert any("recipes" in p.parts for p in TRAINING_SIDE) and any(p.name == "pretrain.py" for p in TRAINING_SIDE)


@pytest.mark.parametrize("path", TRAINING_SIDE, ids=lambda p: str(p.relative_to(REPO)))
def test_training_side_imports_no_launch_code(path):
    bad = {m for m in imported_modules(path) if m.split(".")[0] in LAUNCH_SIDE or m.startswith(LAUNCH_SIDE)}
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


UPLOADER_SIDE = [
    "nemotron.tracking.uploader",
    "nemotron.tracking.store",
    "nemotron.tracking.lineage",
    "nemotron.tracking.registry",
    "nemotron.tracking.plots",
]
"""The MLflow uploader process (and what it imports when a run ends): it runs beside training, on another
core, while training imports torch; importing torch or megatron itself would cost seconds at the end."""


def test_the_mlflow_uploader_loads_no_torch_even_for_lineage(tmp_path):
    blend = tmp_path / "tiny" / "blend.json"
    code = (
        "import json, sys\nfrom omegaconf import OmegaConf\n"
        f"import {', '.join(UPLOADER_SIDE)}\n"
        "from nemotron.tracking.lineage import data_files\n"
        f"cfg = OmegaConf.create({{'data': {{'prefixes': None, 'blend_file': None, 'generate_tiny': True, "
        f"'cache_dir': {str(tmp_path)!r}, 'num_documents': 1, 'tokenizer_vocab_size': 2, 'seed': 3}}}})\n"
        "try:\n    data_files(cfg)\nexcept (OSError, ValueError):\n    pass\n"  # no blend file: it is looked up
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "nemotron.common.blend" in loaded  # lineage did look for the tiny data's blend file
    assert not sorted(m for m in loaded if m.split(".")[0] in ("torch", "megatron", "hydra")), blend
