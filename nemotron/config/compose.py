"""Compose a run config in-process, as `python -m nemotron.train` would, for tests and tools.

    from nemotron.config.compose import compose_run
    cfg = compose_run(["+recipe=nano3/pretrain", "train.steps=5"], run_dir="/tmp/run")

Uses Hydra's compose API on the shipped `conf/` (the runspec plugin adds the recipes), so what a test
sees is what the CLI composes. `${hydra:...}` is not available outside a Hydra app, so the run
directory is given explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from nemotron.config import register_configs
from nemotron.common.paths import CONF_DIR, plugins_on_path


def compose_run(
    overrides: Sequence[str] = (), run_dir: str | Path = "outputs/compose", with_hydra: bool = False
) -> DictConfig:
    """The composed (unresolved) config for `overrides`, with `run_dir` set.

    `with_hydra=True` keeps Hydra's own node (`cfg.hydra.runtime.choices` says which option of each
    group was chosen), as an app sees it through HydraConfig.
    """
    plugins_on_path()
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[*overrides, f"run_dir={run_dir}"],
            return_hydra_config=with_hydra,
        )
