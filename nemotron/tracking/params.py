"""The resolved config as MLflow params: flattened, secret-free, within MLflow's limits (stdlib only).

`to_params(container)` turns `{"model": {"num_layers": 2}}` into `{"model.num_layers": "2"}`. Lists
stay one param (JSON text). MLflow refuses keys over 250 characters or with characters outside
`[A-Za-z0-9_ ./:-]`, and values over 6000 characters: such keys are rewritten and such values cut,
ending in a marker that says how long the value was and where the whole of it is (the resolved
config, logged as an artifact next to the params), so nothing is dropped without a trace.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Mapping

from nemotron.tracking.secrets import redact

MAX_KEY_LEN = 250
"""MLflow's limit on param/tag/metric key length."""
MAX_PARAM_VALUE_LEN = 6000
"""MLflow's limit on a param value."""
MAX_TAG_VALUE_LEN = 8000
"""MLflow's limit on a tag value."""
FULL_CONFIG_ARTIFACT = "config/resolved.yaml"
"""Where the whole resolved config is logged; truncated values point here."""

_BAD_KEY_CHARS = re.compile(r"[^\w./: -]")


def flatten(node: Any, prefix: str = "") -> Dict[str, Any]:
    """`{"a": {"b": 1}, "c": [1, 2]}` -> `{"a.b": 1, "c": [1, 2]}` (lists are kept whole)."""
    if not isinstance(node, Mapping):
        return {prefix: node}
    flat: Dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def param_value(value: Any) -> str:
    """How a config value reads as a param: null -> 'None', containers as JSON, the rest str()."""
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(value, default=str)
    return str(value)


def truncate(value: str, limit: int, where: str = FULL_CONFIG_ARTIFACT) -> str:
    """`value` cut to `limit` characters, ending with a marker naming its full length and location."""
    if len(value) <= limit:
        return value
    marker = f"...[truncated: {len(value)} chars; full value in {where}]"
    return value[: limit - len(marker)] + marker


def safe_key(key: str) -> str:
    """A key MLflow accepts: odd characters become `_`; an over-long key keeps its tail."""
    key = _BAD_KEY_CHARS.sub("_", key)
    if len(key) > MAX_KEY_LEN:
        key = "..." + key[-(MAX_KEY_LEN - 3):]
    return key


def to_params(container: Mapping[str, Any]) -> Dict[str, str]:
    """Flattened, redacted, length-limited params of a resolved config container."""
    return {safe_key(k): truncate(param_value(v), MAX_PARAM_VALUE_LEN)
            for k, v in flatten(redact(container)).items()}


def to_tags(tags: Mapping[str, Any]) -> Dict[str, str]:
    """Tags with safe keys and values within MLflow's tag limit; None values dropped."""
    return {safe_key(k): truncate(str(v), MAX_TAG_VALUE_LEN) for k, v in tags.items() if v is not None}
