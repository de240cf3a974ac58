"""Keep secrets out of everything tracking writes or the entry point prints (stdlib only).

A name (config key or environment variable) marks a secret when one of its parts (split at `_`, `-`,
`.`, spaces and camelCase) ends with KEY, TOKEN, SECRET or PASSWORD, in any case: `HF_TOKEN`,
`api_key`, `wandbApiKey`, `DB_PASSWORD`, `clientsecret`. Parts are used rather than raw substrings
so that `data.tokenizer_path` and the `tokens_per_s` metric stay visible. `redact(container)` replaces such config values with `<redacted>`, and also
any string that contains the value of a secret environment variable (a token pasted into an
unrelated key, or interpolated with `${oc.env:...}`). `scrub_text` does the same to free text
(train.log, the runspec block) before it is uploaded.

    from nemotron.tracking.secrets import redact
    print(OmegaConf.to_yaml(OmegaConf.create(redact(OmegaConf.to_container(cfg, resolve=True)))))
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, List, Mapping, Optional

SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
"""A name with a part ending in one of these (case-insensitive) holds a secret."""
REDACTED = "<redacted>"
"""What a secret value is replaced with."""
MIN_SECRET_LEN = 8
"""Shorter values of secret variables are not searched for in other values and text (`MY_TOKEN=none`
would otherwise redact every `none`); keys with secret names are redacted whatever their length."""

_ASSIGNMENT = re.compile(
    r"(?P<name>[A-Za-z_][\w.\-]*)(?P<sep>\s*[=:]\s*)(?P<quote>[\"']?)(?P<value>[^\s\"',}]+)"
)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_PARTS = re.compile(r"[^A-Za-z0-9]+")


def is_secret_name(name: Any) -> bool:
    """True when a part of `name` ends with KEY, TOKEN, SECRET or PASSWORD (any case)."""
    parts = _PARTS.split(_CAMEL.sub("_", str(name)))
    return any(part.upper().endswith(SECRET_WORDS) for part in parts if part)


def secret_env_values(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """Values of environment variables with secret names, longest first (for scrubbing)."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def _scrub_values(text: str, values: Iterable[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def redact(container: Any, environ: Optional[Mapping[str, str]] = None) -> Any:
    """A copy of a plain config container (dicts, lists, scalars) with secrets replaced.

    Values under secret-named keys become `<redacted>` (null and empty values stay as they are, so a
    printed config still shows whether a secret is set); strings containing a secret environment
    value have it replaced. The input is not modified.
    """
    return _redact(container, secret_env_values(environ))


def _redact(node: Any, values: List[str]) -> Any:
    if isinstance(node, Mapping):
        return {k: (REDACTED if is_secret_name(k) and v not in (None, "") else _redact(v, values))
                for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_redact(v, values) for v in node]
    if isinstance(node, str):
        return _scrub_values(node, values)
    return node


def scrub_text(text: str, extra_values: Iterable[str] = (),
               environ: Optional[Mapping[str, str]] = None) -> str:
    """`text` with secret assignments (`HF_TOKEN=...`, `api_key: ...`) and known secret values hidden."""

    def hide(match: re.Match) -> str:
        if not is_secret_name(match.group("name")):
            return match.group(0)
        return f"{match.group('name')}{match.group('sep')}{match.group('quote')}{REDACTED}"

    values = sorted({*secret_env_values(environ), *(v for v in extra_values if len(v) >= MIN_SECRET_LEN)},
                    key=len, reverse=True)
    return _ASSIGNMENT.sub(hide, _scrub_values(text, values))


def secret_config_values(container: Any) -> List[str]:
    """String values under secret-named keys anywhere in a config container (for scrubbing text)."""
    found: List[str] = []

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, secret or is_secret_name(k))
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v, secret)
        elif secret and isinstance(node, str) and node:
            found.append(node)

    walk(container, False)
    return found
