"""Every private API of Hydra and OmegaConf the project uses, in one place, behind a version check.

Like `nemotron/runtime/cpu_compat.py` for Megatron: when a new Hydra or OmegaConf moves one of these,
this module is the only one to change, and the check below says so at import instead of a confusing
AttributeError deep in a sweep. `SUPPORTED` is the checked range; pyproject.toml pins the same
(tests/test_dependencies.py holds them equal).

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
- `Override._value` (hydra.core.override_parser.types), launchers/override_lines.py via `with_value()`:
  a swept number's override made from a parsed line of the same key (Hydra's parser takes ~0.2 ms a line).
- `is_float`, `is_int`, `yaml_is_bool` (omegaconf._utils), config/dump.py: OmegaConf's rule for quoting
  strings in YAML.
- `omegaconf_base` (omegaconf.base, its `parse`), config/parse_cache.py: interpolation parse trees cached
  during a sweep.
- `Hydra.get_mode` (hydra._internal.hydra), nemotron/train.py via `skip_mode_compose()`: Hydra composes
  the whole config once only to read `hydra.mode` before composing it again for the run (a third of
  a dry run's time). No config this project ships sets `hydra.mode` (tests/config/test_compose_all.py
  checks), so unless the command line names `hydra.mode` or adds a config dir, the mode is "not set"
  without that first composition, as Hydra itself would have found.
- `omegaconf._utils.get_yaml_loader` (also bound in omegaconf.basecontainer), nemotron/train.py via
  `fast_yaml_loading()`: OmegaConf parses every config file with a pure-Python loader class it builds
  anew on each call; the same rules on libyaml's parser parse a compose's ~12 files ~15 ms sooner
  (tests/config/test_yaml_loading.py: same data and the same errors for every YAML file the project
  ships and a corpus of edge cases).
- `DictConfig._get_node` / `ListConfig._get_node` (every node read, interpolations resolved through
  them too), config/rule_reads.py via `recording_reads()`: which keys a validation rule read, so a sweep
  member that changes none of them does not run that rule again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Any, Iterator, Optional, Set

import hydra
import omegaconf
import yaml
from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.hydra import Hydra
from hydra.core.override_parser.types import Override
from omegaconf import _utils as omegaconf_utils
from omegaconf import base as omegaconf_base
from omegaconf import basecontainer as omegaconf_basecontainer
from omegaconf._utils import is_float, is_int, yaml_is_bool

from nemotron.common.versions import refusal

BASIC_LAUNCHER_LOGGER = "hydra._internal.core_plugins.basic_launcher"
"""The logger name BasicLauncher logs its members' overrides with (its module's logger; checked below)."""
CORE_PLUGINS = {"BasicLauncher": BASIC_LAUNCHER_LOGGER, "BasicSweeper": "hydra._internal.core_plugins.basic_sweeper"}
"""Imported on first use (module `__getattr__`), never at this module's import: Hydra's plugin scan
executes the core plugin modules anew, and a class imported before it would not be the one Hydra uses."""

SUPPORTED = {"hydra-core": ">=1.3.2,<1.4", "omegaconf": ">=2.3,<2.4"}
"""distribution -> the releases these private APIs were checked against."""
INSTALLED = {"hydra-core": hydra.__version__, "omegaconf": omegaconf.__version__}
"""distribution -> the version imported here."""

__all__ = [
    "BASIC_LAUNCHER_LOGGER",
    "apply_overrides",
    "get_overrides_dirname",
    "is_float",
    "is_int",
    "yaml_is_bool",
    "omegaconf_base",
    "check_versions",
    "skip_mode_compose",
    "with_value",
    "fast_yaml_loading",
]


def __getattr__(name: str):
    if name in CORE_PLUGINS:
        import importlib

        plugin = getattr(importlib.import_module(CORE_PLUGINS[name]), name)
        if name == "BasicLauncher" and plugin.__module__ != BASIC_LAUNCHER_LOGGER:
            raise ImportError(f"BasicLauncher moved to {plugin.__module__}: update nemotron/config/hydra_compat.py")
        return plugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_versions() -> None:
    """Refuse to run against a Hydra/OmegaConf series whose private APIs were not checked."""
    refused = refusal(
        SUPPORTED, "nemotron's use of private Hydra/OmegaConf APIs (nemotron/config/hydra_compat.py)", INSTALLED
    )
    if refused:
        raise ImportError(refused)
    if not callable(getattr(omegaconf_base, "parse", None)):
        raise ImportError("omegaconf.base.parse is gone: nemotron/config/parse_cache.py needs updating")


def apply_overrides(cfg: omegaconf.DictConfig, overrides: list) -> None:
    """Hydra's own application of parsed overrides to a config (in place)."""
    ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)


def with_value(override: Override, value: Any, line: str) -> Override:
    """`override` (a parsed line) holding another parsed value, as if `line` had been parsed."""
    return dataclasses.replace(override, _value=value, input_line=line)


@contextlib.contextmanager
def recording_reads() -> Iterator[Set[str]]:
    """While open, the full dotted key of every config node read (through `_get_node`) is added to the
    yielded set: attribute and item access, `get`, `select`, interpolation resolution alike."""
    reads: Set[str] = set()
    originals = {cls: cls._get_node for cls in (omegaconf.DictConfig, omegaconf.ListConfig)}

    def recorder(original: Any) -> Any:
        def _get_node(self: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
            parts, node = [str(key)], self
            while node._get_parent() is not None:
                parts.append(str(node._key()))
                node = node._get_parent()
            reads.add(".".join(reversed(parts)))
            return original(self, key, *args, **kwargs)

        return _get_node

    for cls, original in originals.items():
        cls._get_node = recorder(original)
    try:
        yield reads
    finally:
        for cls, original in originals.items():
            cls._get_node = original


def _names_mode_or_config_dir(argv: list) -> bool:
    return any(
        arg.lstrip("+~").startswith("hydra.mode") or arg.startswith(("--config-dir", "-cd", "--config-path", "-cp"))
        for arg in argv
    )


def skip_mode_compose(argv: list) -> None:
    """Let Hydra skip its mode-only composition when `argv` cannot set `hydra.mode` (see above)."""
    if _names_mode_or_config_dir(argv) or getattr(Hydra.get_mode, "nemotron_fast", False):
        return
    hydra_get_mode = Hydra.get_mode

    def get_mode(self, config_name, overrides):  # noqa: ANN001 - Hydra's signature
        return None if not _names_mode_or_config_dir(list(overrides)) else hydra_get_mode(self, config_name, overrides)

    get_mode.nemotron_fast = True
    Hydra.get_mode = get_mode


OMEGACONF_LOADER = omegaconf_utils.get_yaml_loader
"""OmegaConf's own: returns a new yaml.SafeLoader subclass on every call."""
LOADER_OVERRIDES = {"construct_mapping"}
"""What OmegaConf's loader class defines beyond yaml.SafeLoader (besides its rule tables): the duplicate-key
check. A release that defines more is left alone (fast_yaml_loading returns False)."""


def _duplicate_key_check(self: Any, node: yaml.MappingNode, deep: bool = False) -> Any:
    """OmegaConf's construct_mapping: a plain key given twice in one mapping is an error."""
    keys = set()
    for key_node, _ in node.value:
        if key_node.tag != yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG:
            continue
        if key_node.value in keys:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key_node.value}",
                key_node.start_mark,
            )  # fmt: skip
        keys.add(key_node.value)
    return yaml.constructor.SafeConstructor.construct_mapping(self, node, deep=deep)


@functools.lru_cache(maxsize=None)
def libyaml_loader() -> Optional[type]:
    """OmegaConf's loader rules (implicit resolvers, constructors, the duplicate-key check) on libyaml's
    parser, built once; None without libyaml or when OmegaConf's loader defines more than it checked."""
    original = OMEGACONF_LOADER()
    own = {name for name, value in vars(original).items() if callable(value) and not name.startswith("__")}
    if not hasattr(yaml, "CSafeLoader") or own != LOADER_OVERRIDES:
        return None
    return type(
        "OmegaConfLibyamlLoader",
        (yaml.CSafeLoader,),
        {
            "construct_mapping": _duplicate_key_check,
            "yaml_implicit_resolvers": {k: list(v) for k, v in original.yaml_implicit_resolvers.items()},
            "yaml_constructors": dict(original.yaml_constructors),
            "yaml_multi_constructors": dict(original.yaml_multi_constructors),
        },
    )


def fast_yaml_loading() -> bool:
    """Make OmegaConf (and Hydra through it) parse YAML with `libyaml_loader()`; False when it cannot."""
    loader = libyaml_loader()
    if loader is None:
        return False
    omegaconf_utils.get_yaml_loader = omegaconf_basecontainer.get_yaml_loader = lambda: loader
    return True


check_versions()
