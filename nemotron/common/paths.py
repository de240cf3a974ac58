"""Where the project's shipped configs and recipes live, and extra recipe roots from the environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this package was installed from (editable install)."""
CONF_DIR = REPO_ROOT / "conf"
"""The primary config and its groups."""
RECIPES_DIR = REPO_ROOT / "recipes"
"""Recipe scripts with runspec blocks."""
RECIPE_PATH_ENV = "NEMOTRON_RECIPE_PATH"
"""Extra recipe roots, separated by os.pathsep, searched after the shipped recipes/."""


def recipe_roots() -> list[Path]:
    """The shipped recipes/ folder followed by the roots named in $NEMOTRON_RECIPE_PATH."""
    extra = [Path(p).resolve() for p in os.environ.get(RECIPE_PATH_ENV, "").split(os.pathsep) if p]
    return [RECIPES_DIR, *extra]


def plugins_on_path() -> None:
    """Put the checkout on sys.path: an editable install hides hydra_plugins/ from Hydra's plugin scan
    (pkgutil cannot walk the editable finder's path hook) when Python runs outside the repo."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))
