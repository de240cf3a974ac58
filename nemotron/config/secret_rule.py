"""Validation rule: a secret-named key is given a string, not a number or a list.

The schema types `cluster.env` and `recipe.env` as str -> str, so OmegaConf would silently turn
`+cluster.env.DB_PASSWORD=0123` into "123" (a password with its leading zero lost). The rule reads
the command-line overrides (Hydra's parser tells `123` from `'123'`) and refuses the non-string ones
in one line that names the key and the type, never the value.
"""

from __future__ import annotations

from typing import Any, List, Optional

from nemotron.tracking.secrets import is_secret_name


def task_overrides(cfg: Any) -> List[str]:
    """The run's command-line overrides: from the composed `hydra` node, else Hydra's global config."""
    if "hydra" in cfg:
        return [str(o) for o in cfg.hydra.overrides.task]
    from hydra.core.hydra_config import HydraConfig

    return [str(o) for o in HydraConfig.get().overrides.task] if HydraConfig.initialized() else []


def secrets_are_strings(cfg: Any) -> Optional[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    names = [str(n) for n in cfg.cluster.secret_names]
    candidates = [o for o in task_overrides(cfg) if "=" in o and is_secret_name(o.split("=", 1)[0], names)]
    if not candidates:  # the usual case: no parser to build (a sweep checks this for every member)
        return None
    for override in OverridesParser.create().parse_overrides(candidates):
        value = override.value()
        if not isinstance(value, str):
            key = override.key_or_group
            kind = type(value).__name__
            return f"{key}: a secret must be a string, not {kind}; quote the value ({key}=\"'...'\")"
    return None
