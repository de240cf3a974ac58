"""The resolved config as YAML, fast: what `OmegaConf.to_yaml(cfg, resolve=True)` writes, via libyaml.

A sweep writes one config.yaml per member (256 members: OmegaConf's pure-Python dumper alone takes
~1.4 s), so this uses PyYAML's C emitter with OmegaConf's rule for strings (quote those that would
load back as a bool, int or float). tests/config/test_dump.py checks the output is identical.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Dict, Mapping, Optional, Tuple

import yaml
from omegaconf import Container, OmegaConf

from nemotron.config.hydra_compat import is_float, is_int, yaml_is_bool
from nemotron.tracking.secrets import reference_secrets, run_secrets

_Base: Any = getattr(yaml, "CDumper", yaml.Dumper)


class ResolvedDumper(_Base):  # type: ignore[misc, valid-type]
    """libyaml's emitter (when PyYAML has it) with OmegaConf's string representer."""


def _represent_str(dumper: Any, data: str) -> Any:
    quoted = yaml_is_bool(data) or is_int(data) or is_float(data)
    return dumper.represent_scalar(yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG, data,
                                   style="'" if quoted else None)


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
    data = resolved(cfg)
    secrets = run_secrets(data, environ)
    return dump_yaml(reference_secrets(data, secrets) if secrets else data), secrets
