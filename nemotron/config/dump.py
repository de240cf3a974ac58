"""The resolved config as YAML, fast: what `OmegaConf.to_yaml(cfg, resolve=True)` writes, via libyaml.

A sweep writes one config.yaml per member (256 members: OmegaConf's pure-Python dumper alone takes
~1.4 s), so this uses PyYAML's C emitter with OmegaConf's rule for strings (quote those that would
load back as a bool, int or float). tests/config/test_dump.py checks the output is identical.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple

import yaml
from omegaconf import Container, OmegaConf

from nemotron.config.hydra_compat import is_float, is_int, yaml_is_bool
from nemotron.config.leaf_deps import LeafDeps
from nemotron.tracking.secrets import reference_secrets, run_secrets

_Base: Any = getattr(yaml, "CDumper", yaml.Dumper)


class ResolvedDumper(_Base):  # type: ignore[misc, valid-type]
    """libyaml's emitter (when PyYAML has it) with OmegaConf's string representer."""


def _represent_str(dumper: Any, data: str) -> Any:
    quoted = yaml_is_bool(data) or is_int(data) or is_float(data)
    return dumper.represent_scalar(yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG, data, style="'" if quoted else None)


ResolvedDumper.add_representer(str, _represent_str)


def resolved(cfg: Any, skip: str = "hydra") -> Dict[str, Any]:
    """`cfg` as plain data, resolved, enums as names, without its `skip` key (Hydra's own node)."""
    if skip not in cfg:
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]
    data = {}
    for key in cfg:
        if key == skip:
            continue
        node = cfg._get_node(key)
        if isinstance(node, Container):
            data[key] = OmegaConf.to_container(node, resolve=True, enum_to_str=True)
        else:
            value = cfg[key]
            data[key] = value.name if isinstance(value, Enum) else value
    return data


def resolved_yaml(cfg: Any) -> str:
    """`cfg` resolved (enums as names) and dumped as YAML, byte for byte like OmegaConf.to_yaml;
    a `hydra` node (a config straight from Hydra's loader) is left out, as Hydra's run_job does."""
    return dump_yaml(resolved(cfg))


def dump_yaml(data: Any) -> str:
    """Plain data as YAML, as OmegaConf.to_yaml writes it."""
    return yaml.dump(data, Dumper=ResolvedDumper, default_flow_style=False, allow_unicode=True, sort_keys=False)


def config_yaml(cfg: Any, environ: Optional[Mapping[str, str]] = None) -> Tuple[str, Dict[str, str]]:
    """(the run's config.yaml text, its secrets): `cfg` resolved with every secret value replaced by
    `${oc.env:NAME}`, and NAME -> value for the job's environment (the child's env or 0600 secrets.env)."""
    return data_yaml(resolved(cfg), environ)


def data_yaml(data: Dict[str, Any], environ: Optional[Mapping[str, str]] = None) -> Tuple[str, Dict[str, str]]:
    """`config_yaml` of a config already `resolved` (a caller that also prints it resolves once)."""
    secrets = run_secrets(data, environ)
    return dump_yaml(reference_secrets(data, secrets) if secrets else data), secrets


class SectionCache:
    """config_yaml for the members of a sweep that share a base (launchers/members.py), resolving only
    the values a member can change and re-dumping only the top-level sections holding them.

    A member can differ from its base's first member in the keys it changes (`changed`, leaf values:
    launchers/members.py composes any other change in full) and in the interpolations that read one of
    them or the member's `hydra` node or call a resolver (nemotron/config/leaf_deps.py). So each member
    starts from the base's resolved data, resolves those leaves again, and re-dumps the sections holding
    one; every other
    section's YAML is the base's. YAML of a block mapping is the concatenation of its entries, so the text
    is byte for byte `config_yaml`'s (tests/cli/test_sweep_members.py compares every member of a mixed
    sweep with Hydra's own composition). A config holding secrets takes the full path.
    """

    def __init__(self) -> None:
        self.bases: List[Tuple[Any, Dict[str, Tuple[Any, str]], LeafDeps]] = []

    def config_yaml(self, cfg: Any, changed: FrozenSet[str], environ: Optional[Mapping[str, str]] = None):
        """(text, secrets) as `config_yaml(cfg, environ)`."""
        entry = next((e for e in self.bases if e[0] is cfg), None)
        if entry is None or not changed:
            return self._first(cfg, environ, entry)
        _, sections, deps = entry
        leaves = deps.to_resolve(changed)
        for dotted in changed:
            key, _, rest = dotted.partition(".")
            leaves.setdefault(key, []).append(rest)
        data, texts, fresh = {}, [], {}
        for key in (k for k in cfg if k != "hydra"):
            if key not in sections:
                data[key] = fresh[key] = resolved_section(cfg, key)
                texts.append(dump_yaml({key: data[key]}))
            elif key in leaves:
                data[key] = fresh[key] = _with_leaves(cfg, key, sections[key][0], leaves[key])
                texts.append(dump_yaml({key: data[key]}))
            else:
                data[key], text = sections[key]
                texts.append(text)
        # The base holds no secret (else it is not cached), so only the sections resolved again can bring
        # one, and recipe.env / cluster.env, whose secret names cluster.secret_names extends.
        if run_secrets({**fresh, **{k: data[k] for k in ("recipe", "cluster") if k in data}}, environ):
            return config_yaml(cfg, environ)
        return "".join(texts), {}

    def _first(self, cfg: Any, environ: Optional[Mapping[str, str]], entry: Any):
        text, secrets = config_yaml(cfg, environ)
        if entry is None and not secrets:
            sections = {key: (value, dump_yaml({key: value})) for key, value in resolved(cfg).items()}
            self.bases.append((cfg, sections, LeafDeps(cfg)))
        return text, secrets


def resolved_section(cfg: Any, key: str) -> Any:
    """One top-level entry of `resolved(cfg)`."""
    node = cfg._get_node(key)
    if isinstance(node, Container):
        return OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    value = cfg[key]
    return value.name if isinstance(value, Enum) else value


def _plain(value: Any) -> Any:
    """A resolved value as `resolved` writes it (containers as plain data, enums as names)."""
    if isinstance(value, Container):
        return OmegaConf.to_container(value, resolve=True, enum_to_str=True)
    return value.name if isinstance(value, Enum) else value


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


def _with_leaves(cfg: Any, key: str, base: Any, paths: List[str]) -> Any:
    """The base's resolved section `key` with the leaves at `paths` (relative; "" is the section
    itself) resolved again on `cfg`."""
    if "" in paths:
        return resolved_section(cfg, key)
    data = _copy(base)
    for path in paths:
        parent, parts = data, path.split(".")
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        value = _plain(OmegaConf.select(cfg, f"{key}.{path}", throw_on_missing=True))
        if isinstance(parent, list):
            parent[int(last)] = value
        else:
            parent[last] = value
    return data
