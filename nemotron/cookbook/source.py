"""A Hydra ConfigSource that serves every env.toml profile as a `cluster` option: `cluster=<profile>`.

Search-path entries look like `envtoml:///abs/path/env.toml` (added by hydra_plugins/nemotron_envtoml,
ahead of conf/, so a profile named like a shipped option, e.g. `[dgx]`, is the one `cluster=dgx` picks).
The generated config is a `_global_` package built by `nemotron.cookbook.profile.cluster_option`
on top of the shipped `slurm` (or `local`) option. Notes on keys without a counterpart go to stderr
once per process. A malformed env.toml is an error only for names that are not shipped options, so a
broken file does not break `cluster=local`.
"""

from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path
from typing import List, Optional, Set

from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from omegaconf import OmegaConf

from nemotron.common.paths import CONF_DIR
from nemotron.cookbook.envfile import EnvFile, load_env_file
from nemotron.cookbook.profile import cluster_option

GROUP = "cluster"
_NOTED: Set[str] = set()


def shipped_options() -> List[str]:
    """The cluster options in conf/cluster/."""
    return sorted(p.stem for p in (CONF_DIR / GROUP).glob("*.yaml"))


def by_wait(wait: bool, attached: Optional[str], detached: Optional[str]) -> Optional[str]:
    """`${nemotron.by_wait:${cluster.wait},RUN,BATCH}`: run_partition while waiting, else batch_partition."""
    return attached if wait else detached


def register_resolver() -> None:
    """Register nemotron.by_wait (idempotent)."""
    if not OmegaConf.has_resolver("nemotron.by_wait"):
        OmegaConf.register_new_resolver("nemotron.by_wait", by_wait)


def note_once(lines: List[str]) -> None:
    """Print each note line to stderr the first time it comes up in this process."""
    for line in lines:
        if line not in _NOTED:
            _NOTED.add(line)
            print(line, file=sys.stderr)


class EnvTomlConfigSource(ConfigSource):
    """Serves `cluster/<profile>` from one env.toml."""

    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)
        self.file_path = Path(path.split("://", 1)[-1])  # Hydra passes the entry with its scheme
        register_resolver()

    @staticmethod
    def scheme() -> str:
        return "envtoml"

    @cached_property
    def env_file(self) -> EnvFile:
        """The parsed file (raises EnvFileError, one line, when it is malformed or missing)."""
        return load_env_file(self.file_path)

    def profiles(self, strict: bool) -> List[str]:
        """Profile names; [] for a broken file unless `strict` (then its error is raised)."""
        try:
            return self.env_file.profiles()
        except ValueError:
            if strict:
                raise
            return []

    def available(self) -> bool:
        return True

    def load_config(self, config_path: str) -> ConfigResult:
        name = self._profile_name(self._normalize_file_name(config_path)[: -len(".yaml")])
        if not name or name not in self.profiles(strict=True):
            raise ConfigLoadError(f"Config not found: {config_path}")
        node, notes = cluster_option(self.env_file.resolve(name))
        note_once(notes)
        return ConfigResult(
            config=OmegaConf.create(node),
            path=f"{self.scheme()}://{self.path}",
            provider=self.provider,
            header={"package": "_global_"},
        )

    def is_group(self, config_path: str) -> bool:
        path = config_path.strip("/")
        return path in ("", GROUP)

    def is_config(self, config_path: str) -> bool:
        path = config_path.strip("/")
        name = self._profile_name(path[: -len(".yaml")] if path.endswith(".yaml") else path)
        if not name:
            return False
        return name in self.profiles(strict=name not in shipped_options())

    def list(self, config_path: str, results_filter: Optional[ObjectType]) -> List[str]:
        path = config_path.strip("/")
        files: List[str] = []
        if path == "":
            self._list_add_result(files, GROUP, GROUP, results_filter)
        elif path == GROUP:
            for name in self.profiles(strict=False):
                self._list_add_result(files, f"{GROUP}/{name}", name, results_filter)
        return sorted(set(files))

    @staticmethod
    def _profile_name(path: str) -> Optional[str]:
        """'cluster/dgx' -> 'dgx'; anything else -> None."""
        group, _, name = path.partition("/")
        return name if group == GROUP and name and "/" not in name else None
