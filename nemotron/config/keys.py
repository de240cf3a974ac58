"""Key names the schema allows, the keys a composed config has beyond them, and the closest match."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from typing import Any, Iterator, List, Optional

from omegaconf import DictConfig

from nemotron.config.schema import RunConfig
from nemotron.config.schema_launcher import STOCK_KEYS


def closest(word: str, choices: List[str]) -> str:
    """' (did you mean X?)' for the closest choice, or ''."""
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


@functools.lru_cache(maxsize=None)
def _hints(node: type) -> dict:
    return typing.get_type_hints(node)


@functools.lru_cache(maxsize=None)
def schema_node(dotted: str) -> Optional[type]:
    """The dataclass at `dotted` in RunConfig ('model' -> ModelConfig), or None (cached: type hints are slow)."""
    node: type = RunConfig
    for part in [p for p in dotted.split(".") if p]:
        hints = _hints(node)
        if part not in hints or not dataclasses.is_dataclass(hints[part]):
            return None
        node = hints[part]
    return node


@functools.lru_cache(maxsize=None)
def _field_names(dotted: str) -> Optional[tuple]:
    node = schema_node(dotted)
    return None if node is None else tuple(f.name for f in dataclasses.fields(node))


def schema_keys(dotted: str) -> Optional[List[str]]:
    """Field names of the schema node at `dotted`, if it is a dataclass (`hydra.launcher`: the launcher's)."""
    if dotted == "hydra.launcher":
        return list(STOCK_KEYS)
    names = _field_names(dotted)
    return None if names is None else list(names)


def unknown_keys(cfg: Any, prefix: str = "") -> Iterator[str]:
    """Dotted keys present in `cfg` but absent from the schema (e.g. added with `+model.x=1`)."""
    allowed = schema_keys(prefix)
    if allowed is None or not isinstance(cfg, DictConfig):
        return
    for key in cfg.keys():
        if key == "hydra" and not prefix:
            continue  # Hydra's own node, present when composed with return_hydra_config
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in allowed:
            yield dotted
        else:
            yield from unknown_keys(cfg._get_node(key), dotted)


def describe_unknown(dotted: str) -> Optional[str]:
    """'model.num_layrs: unknown key (did you mean num_layers?)', else the list of valid keys."""
    parent, _, key = dotted.rpartition(".")
    keys = schema_keys(parent)
    if not key or keys is None:
        return None
    suggestion = closest(key, keys)
    if suggestion:
        return f"{dotted}: unknown key{suggestion}"
    where = f"'{parent}'" if parent else "the top level"
    return f"{dotted}: unknown key; valid keys in {where}: {', '.join(keys)}"
