"""One clear line for each kind of bad input, instead of a stack trace.

`python -m nemotron.train` asks Hydra to raise composition errors (HYDRA_FULL_ERROR) and passes them
through `explain`, which names the key, the valid choices and the closest match. Errors it does not
recognise (a bug, a training failure) keep their full traceback.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import yaml
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from nemotron.config.keys import closest, describe_unknown
from nemotron.config.validate import ConfigError
from nemotron.runspec.parser import RunspecError
from nemotron.runspec.source import GROUP as RECIPE_GROUP
from nemotron.runspec.source import RecipeConfigError, yaml_line
from nemotron.tracking.secrets import is_secret_name



def explain_unknown_key(err: OmegaConfBaseException) -> Optional[str]:
    return describe_unknown(getattr(err, "full_key", None) or "")


def explain_missing_option(err: MissingConfigException) -> Optional[str]:
    group, _, option = (err.missing_cfg_file or "").rpartition("/")
    if group.split("/")[0] == RECIPE_GROUP:
        return explain_missing_recipe(err.missing_cfg_file[len(RECIPE_GROUP) + 1 :])
    if not group:
        return None
    options = list(err.options or [])
    return f"{group}={option}: no such option{closest(option, options)}; valid choices: {', '.join(options)}"


def explain_missing_recipe(name: str) -> str:
    names = recipe_names()
    parent = next((n for n in sorted(names, key=len, reverse=True) if name.startswith(n + "/")), None)
    if parent is not None:  # +recipe=<name>/<config>: the cookbook's -c
        from nemotron.common.paths import recipe_roots
        from nemotron.runspec.parser import discover
        from nemotron.runspec.source import config_files

        spec = discover([r for r in recipe_roots() if r.is_dir()])[parent]
        configs, wanted = [p.stem for p in config_files(spec)], name[len(parent) + 1 :]
        return (f"+recipe={name}: recipe {parent} has no config {wanted!r} in {spec.config_dir}"
                f"{closest(wanted, configs)}; its configs: {', '.join(configs) or '(none)'}")
    return f"+recipe={name}: no such recipe{closest(name, names)}; available: {', '.join(names)}"


def require_recipe(cfg: Any) -> None:
    """A run needs a recipe; say which ones exist."""
    if not cfg.recipe.name:
        raise ConfigError(f"no recipe selected: add +recipe=<name>; available: {', '.join(recipe_names())}")


def recipe_names() -> List[str]:
    """Names of every recipe on the recipe roots."""
    from nemotron.common.paths import recipe_roots
    from nemotron.runspec.parser import discover

    return sorted(discover([r for r in recipe_roots() if r.is_dir()]))


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes/contexts, outermost first."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def explain(exc: BaseException) -> Optional[str]:
    """A short message for bad input, or None when `exc` is not about the user's input."""
    chain = list(causes(exc))
    for err in chain:
        if isinstance(err, (ConfigError, RunspecError, RecipeConfigError)):
            return str(err)
        if isinstance(err, MissingConfigException):
            return explain_missing_option(err) or first_lines(err)
        if isinstance(err, (ConfigKeyError, ConfigAttributeError)):
            message = explain_unknown_key(err)
            if message:
                return message
    for err in chain:
        if isinstance(err, OverrideParseException):
            return f"override {err.override!r}: {first_lines(err)}"
        if isinstance(err, OmegaConfBaseException):
            return explain_config_value(err)
        if isinstance(err, yaml.MarkedYAMLError):
            return explain_yaml_error(err)
    if isinstance(exc, HydraException):
        return first_lines(exc)
    return explain_unwritable_run_dir(exc)


def explain_yaml_error(err: "yaml.MarkedYAMLError") -> str:
    """file:line:column and the problem (the file is the mark's stream name: Hydra loads an open file)."""
    mark = err.problem_mark or err.context_mark
    column = mark.column + 1 if mark is not None else 1
    name = getattr(mark, "name", None) or ""
    if Path(name).is_file():
        return f"{name}:{yaml_line(err)}:{column}: not valid YAML: {err.problem}"
    return f"a config file is not valid YAML: {err.problem} (line {yaml_line(err)}, column {column}); " \
           "check the files of --config-dir"


def explain_config_value(err: OmegaConfBaseException) -> str:
    """OmegaConf refused a value: the key and why (a secret-named key: the secrets rule, value unshown)."""
    key = getattr(err, "full_key", "") or "config"
    if is_secret_name(key):
        kind = type(getattr(err, "value", None) or "").__name__
        return f"{key} is a secret and must be a string, not {kind if kind != 'str' else 'this value'}; quote it"
    return f"{key}: {first_lines(err)}"


def explain_unwritable_run_dir(err: BaseException) -> Optional[str]:
    """Hydra could not create the run directory (an OSError raised inside Hydra, naming a path)."""
    if not isinstance(err, OSError) or not err.filename:
        return None
    if not any(f"{os.sep}hydra{os.sep}" in frame.filename for frame in traceback.extract_tb(err.__traceback__)):
        return None
    return (f"cannot create the run directory {err.filename}: {err.strerror}; "
            f"set paths.output_root to a writable directory")


def first_lines(err: BaseException) -> str:
    """The exception's message up to OmegaConf's detail block, joined onto one line."""
    lines = []
    for line in str(err).strip().splitlines():
        if line.strip().startswith(("full_key:", "object_type=", "reference_type=")):
            break
        if line.strip():
            lines.append(line.strip())
    return " ".join(lines)
