"""Dependencies point one way: the training side never imports the compose/launch side.

Recipes and the runtime must run from a resolved config alone (on a Slurm node, in a container), so
importing Hydra or the launcher there would be a bug. The opposite direction (compose/launch importing
no torch, megatron or mlflow) is checked by running the CLI: tests/cli/test_cli_hydra.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TRAINING_SIDE = sorted([*REPO.glob("recipes/**/*.py"), *REPO.glob("nemotron/runtime/*.py"),
                        *REPO.glob("nemotron/tracking/*.py")])
FORBIDDEN = ("hydra", "launchers", "hydra_plugins", "nemotron.train", "nemotron.launch", "nemotron.argv",
             "nemotron.errors", "nemotron.runspec", "nemotron.config.compose")


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
    bad = {m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN or m.startswith(FORBIDDEN)}
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"
