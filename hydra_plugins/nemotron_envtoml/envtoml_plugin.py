"""Hydra plugin entry: serves the env.toml profiles (the Nemotron cookbook's file) as `cluster` options.

The SearchPathPlugin prepends `envtoml://<env.toml>` (found as nemotron.cookbook.envfile finds it:
$NEMOTRON_ENV_FILE, else walking up from the working directory to the project root), so
`cluster=<profile>` resolves, and a profile wins over a shipped option of the same name. Imported for
every Hydra command: kept light (no torch, megatron or mlflow).
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from nemotron.cookbook.envfile import find_env_file
from nemotron.cookbook.source import EnvTomlConfigSource, register_resolver

__all__ = ["EnvTomlSearchPathPlugin", "EnvTomlConfigSource"]

register_resolver()


class EnvTomlSearchPathPlugin(SearchPathPlugin):
    """Prepends `envtoml://<file>` when an env.toml applies here; `--info searchpath` shows `nemotron-envtoml`."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        path = find_env_file()
        if path is not None:
            search_path.prepend(provider="nemotron-envtoml", path=f"envtoml://{path}")
