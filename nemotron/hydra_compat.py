"""Every private API of Hydra and OmegaConf the project uses, in one place, behind a version check.

Like `nemotron/runtime/cpu_compat.py` for Megatron: when a new Hydra or OmegaConf moves one of these,
this module is the only one to change, and the check below says so at import instead of a confusing
AttributeError deep in a sweep. The pins in pyproject.toml (hydra-core<1.4, omegaconf<2.4) match.

What is used, from where, by whom and why:
- `BasicLauncher` (hydra._internal.core_plugins.basic_launcher), launchers/sweep.py: `-m` on cluster=local
  runs the members as Hydra's own launcher would; `BASIC_LAUNCHER_LOGGER`, the logger it prints each
  member's overrides with (scrubbed of secrets there).
- `BasicSweeper` (hydra._internal.core_plugins.basic_sweeper), hydra_plugins/nemotron_launcher: the
  sweeper, minus its slow re-composition of each member.
- `apply_overrides` (`ConfigLoaderImpl._apply_overrides_to_config`), launchers/members.py: value
  overrides applied in place to a shared base.
- `get_overrides_dirname` (hydra._internal.config_loader_impl), launchers/members.py: a member's
  `hydra.job.override_dirname`, as Hydra computes it.
- `is_float`, `is_int`, `yaml_is_bool` (omegaconf._utils), config/dump.py: OmegaConf's rule for quoting
  strings in YAML.
- `omegaconf_base` (omegaconf.base, its `parse`), config/parse_cache.py: interpolation parse trees cached
  during a sweep.
"""

from __future__ import annotations

import hydra
import omegaconf
from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import base as omegaconf_base
from omegaconf._utils import is_float, is_int, yaml_is_bool

BASIC_LAUNCHER_LOGGER = BasicLauncher.__module__
"""The logger name BasicLauncher logs its members' overrides with (it logs via its module's logger)."""

SUPPORTED = {"hydra-core": (hydra.__version__, "1.3."), "omegaconf": (omegaconf.__version__, "2.3.")}
"""package -> (installed version, the series these private APIs were checked against)."""

__all__ = [
    "BasicLauncher",
    "BASIC_LAUNCHER_LOGGER",
    "BasicSweeper",
    "apply_overrides",
    "get_overrides_dirname",
    "is_float",
    "is_int",
    "yaml_is_bool",
    "omegaconf_base",
    "check_versions",
]


def check_versions() -> None:
    """Refuse to run against a Hydra/OmegaConf series whose private APIs were not checked."""
    for name, (version, series) in SUPPORTED.items():
        if not version.startswith(series):
            raise ImportError(
                f"nemotron uses private APIs of {name} {series}x (nemotron/hydra_compat.py); "
                f"{version} is installed: pip install '{name}=={series}*'"
            )
    if not callable(getattr(omegaconf_base, "parse", None)):
        raise ImportError("omegaconf.base.parse is gone: nemotron/config/parse_cache.py needs updating")


def apply_overrides(cfg: omegaconf.DictConfig, overrides: list) -> None:
    """Hydra's own application of parsed overrides to a config (in place)."""
    ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)


check_versions()
