"""Hydra plugin entry: puts the runspec recipe roots on the config search path.

Hydra imports every module under the `hydra_plugins` namespace package at start-up and registers the
Plugin subclasses it finds: the SearchPathPlugin below and the `runspec://` ConfigSource (imported
here so Hydra sees it). `--info searchpath` shows the entry as provider `nemotron-runspec`.
Kept light: no torch, megatron or mlflow.
"""

from __future__ import annotations

import os

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from nemotron.config import register_configs
from nemotron.common.paths import recipe_roots
from nemotron.runspec.source import RunspecConfigSource

__all__ = ["RunspecSearchPathPlugin", "RunspecConfigSource"]

register_configs()


class RunspecSearchPathPlugin(SearchPathPlugin):
    """Appends `runspec://<recipes roots>` so `+recipe=<runspec name>` resolves."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        roots = os.pathsep.join(str(r) for r in recipe_roots())
        search_path.append(provider="nemotron-runspec", path=f"runspec://{roots}")
