"""A Hydra ConfigSource that serves every runspec-carrying recipe script as a `recipe` config.

`+recipe=nano3/pretrain` makes Hydra load the config `recipe/nano3/pretrain`; this source answers it
from the script's `[tool.runspec]` block and the recipe's own default config file, so no recipe YAML
is written by hand. The generated config is a `_global_` package:

    defaults: <the recipe config's own defaults list, e.g. `override /model: nano3_tiny`>
    recipe: {name, script, launch, cmd, image, nodes, gpus_per_node, env, ...}   # runspec, then the
                                                                                  # config's `recipe:`
    train/optim/parallel: ...                                                     # the recipe's config

Precedence (low -> high): runspec defaults < the recipe's own config < config groups < command line.
The recipe's config may choose group options (in `defaults`) but may not set group values
(`model.*`, `data.*`, `cluster.*`, `tracker.*`): those belong to a group option, so the groups
always win over the recipe and there is one place to look for each value.

Search-path entries look like `runspec:///abs/recipes:/abs/more_recipes` (roots joined by os.pathsep).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
import yaml
from omegaconf import OmegaConf

from nemotron.runspec.parser import Runspec, discover

GROUP = "recipe"
"""The config group recipes are selected in."""
RECIPE_CONFIG_KEYS = ("defaults", "recipe", "train", "optim", "parallel", "checkpoint", "dpo", "rl", "eval")
"""Top-level keys a recipe's own config may set (`recipe` overrides the runspec's fields)."""
GROUP_KEYS = ("model", "data", "cluster", "tracker", "resources")
"""Keys owned by config groups: a recipe config setting them is an error."""


class RecipeConfigError(ValueError):
    """A recipe's own config file sets something it may not; str() is one line naming file and key."""


def recipe_node(spec: Runspec, config: Optional[Path] = None) -> Dict[str, Any]:
    """The config a recipe contributes: runspec fields under `recipe`, plus its own config (`config`, else
    the runspec's default one)."""
    own = load_recipe_config(spec, config)
    node: Dict[str, Any] = {"defaults": list(own.pop("defaults", [])) + ["_self_"]}
    from_runspec = {
        "name": spec.name,
        "script": str(spec.script),
        "launch": spec.launch,
        "cmd": literal(spec.cmd),
        "workdir": literal(spec.workdir),
        "image": literal(spec.image),
        "setup": literal(spec.setup),
        "nodes": spec.nodes,
        "gpus_per_node": runspec_gpus(spec.gpus_per_node),
        "env": {k: literal(v) for k, v in spec.env.items()},
        "dependencies": list(spec.dependencies),
    }
    node["recipe"] = OmegaConf.to_container(OmegaConf.merge(from_runspec, own.pop("recipe", {})))
    node.update(own)
    return node


def config_files(spec: Runspec) -> List[Path]:
    """The config files in a recipe's config dir (each selectable as `+recipe=<name>/<file stem>`)."""
    exts = (".json",) if spec.config_format == "json" else (".yaml", ".yml")
    if not spec.config_dir.is_dir():
        return []
    return sorted(p for p in spec.config_dir.iterdir() if p.suffix in exts and p.is_file())


def config_file_at(spec: Runspec, relative: str) -> Optional[Path]:
    """The config file `relative` (no extension) names from the recipe's config dir, or None."""
    exts = (".json",) if spec.config_format == "json" else (".yaml", ".yml")
    base = Path(relative[1:]) if relative.startswith("@/") else spec.config_dir / relative
    return next((Path(str(base) + ext) for ext in exts if Path(str(base) + ext).is_file()), None)


def literal(text: Optional[str]) -> Optional[str]:
    """A runspec string as OmegaConf must see it: `${HOME}` is the shell's, not an interpolation."""
    return None if text is None else text.replace("${", "\\${")


def runspec_gpus(value: int | str) -> int | str:
    """The runspec's GPUs per node; "gpu" (one rank per GPU the node has) follows the cluster option."""
    return "${cluster.gpus_per_node}" if value == "gpu" else value


def yaml_line(err: "yaml.MarkedYAMLError") -> int:
    """The 1-based line a YAML error points at."""
    mark = err.problem_mark or err.context_mark
    return mark.line + 1 if mark is not None else 1


def load_recipe_config(spec: Runspec, path: Optional[Path] = None) -> Dict[str, Any]:
    """The recipe's config file (`path`, else its default one) as a dict (empty when it has none), keys checked."""
    path = path or spec.config_file()
    if path is None:
        return {}
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    except yaml.MarkedYAMLError as err:
        raise RecipeConfigError(f"{path}:{yaml_line(err)}: not valid YAML: {err.problem}") from err
    if not isinstance(loaded, dict):
        raise RecipeConfigError(f"{path}: expected a mapping at the top level")
    for key in loaded:
        if key in GROUP_KEYS:
            raise RecipeConfigError(
                f"{path}: key '{key}' is owned by the '{key}' group; "
                f"select an option in `defaults` (e.g. `override /{key}: <option>`) instead"
            )
        if key not in RECIPE_CONFIG_KEYS:
            raise RecipeConfigError(
                f"{path}: unknown key '{key}'; a recipe config may set {', '.join(RECIPE_CONFIG_KEYS)}"
            )
    return loaded


class RunspecConfigSource(ConfigSource):
    """Serves `recipe/<runspec name>` configs from recipe scripts under one or more roots."""

    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)
        self.roots = [Path(p) for p in path.split(os.pathsep) if p]

    @staticmethod
    def scheme() -> str:
        return "runspec"

    @cached_property
    def recipes(self) -> Dict[str, Runspec]:
        """Runspec name -> parsed block, discovered on first use (strict: a bad block raises)."""
        return discover([r for r in self.roots if r.is_dir()])

    def available(self) -> bool:
        return any(r.is_dir() for r in self.roots)

    def load_config(self, config_path: str) -> ConfigResult:
        name = self._recipe_name(self._normalize_file_name(config_path)[: -len(".yaml")])
        found = self.variant(name or "")
        if found is None:
            raise ConfigLoadError(f"Config not found: {config_path}")
        return ConfigResult(
            config=OmegaConf.create(recipe_node(*found)),
            path=f"{self.scheme()}://{self.path}",
            provider=self.provider,
            header={"package": "_global_"},
        )

    def is_group(self, config_path: str) -> bool:
        path = config_path.strip("/")
        if path == "":
            return True
        name = self._recipe_name(path)
        if name is None:
            return False
        return name == "" or any(n.startswith(name + "/") for n in self.recipes)

    def is_config(self, config_path: str) -> bool:
        path = config_path.strip("/")
        if path.endswith(".yaml"):
            path = path[: -len(".yaml")]
        name = self._recipe_name(path)
        return bool(name) and self.variant(name) is not None

    def variant(self, name: str) -> Optional[Tuple[Runspec, Optional[Path]]]:
        """`nano3/pretrain` -> (its runspec, None: the default config); `nano3/pretrain/tiny` -> (the runspec,
        <config dir>/tiny.yaml) when that file exists (the cookbook's `-c tiny`; a path relative to the
        config dir, `..` allowed, names any other file); else None."""
        if name in self.recipes:
            return self.recipes[name], None
        for recipe in sorted(self.recipes, key=len, reverse=True):
            if name.startswith(recipe + "/"):
                found = config_file_at(self.recipes[recipe], name[len(recipe) + 1 :])
                if found is not None:
                    return self.recipes[recipe], found
        return None

    def list(self, config_path: str, results_filter: Optional[ObjectType]) -> List[str]:
        prefix = config_path.strip("/")
        if prefix == "":
            children = {GROUP}
        else:
            name = self._recipe_name(prefix)
            if name is None:
                return []
            start = name + "/" if name else ""
            children = {n[len(start):].split("/")[0] for n in self.recipes if n.startswith(start)}
        files: List[str] = []
        for child in sorted(children):
            child_path = f"{prefix}/{child}" if prefix else child
            self._list_add_result(files, child_path, child, results_filter)
        if prefix and results_filter == ObjectType.CONFIG:
            files.extend(self.nested_options(start))
        return sorted(set(files))

    def nested_options(self, start: str) -> List[str]:
        """Every recipe below `start` and each of its configs, relative to `start` (`nano3/pretrain`,
        `nano3/pretrain/tiny`): the options `+recipe=` takes, so Hydra's shell completion offers them."""
        found: List[str] = []
        for name, spec in self.recipes.items():
            if name.startswith(start):
                rel = name[len(start) :]
                found += [rel, *(f"{rel}/{path.stem}" for path in config_files(spec))]
        return found

    @staticmethod
    def _recipe_name(path: str) -> Optional[str]:
        """'recipe/nano3/pretrain' -> 'nano3/pretrain'; 'recipe' -> ''; other groups -> None."""
        if path == GROUP:
            return ""
        if path.startswith(GROUP + "/"):
            return path[len(GROUP) + 1 :]
        return None
