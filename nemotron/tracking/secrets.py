"""Keep secrets out of everything a run writes or the entry point prints (stdlib only).

The rule: a name holds a secret when its last part (after the last `.` of a config path) is an
environment-variable-style name (upper case, digits, `_`) whose last `_` part is KEY, TOKEN, SECRET,
PASSWORD, PASSWD or CREDENTIALS (`HF_TOKEN`, `WANDB_API_KEY`, `DB_PASSWORD`, `TOKEN`,
`cluster.env.AWS_SECRET_ACCESS_KEY`), or one of the names a cluster adds in `cluster.secret_names`.
Lower-case config keys such as `data.text_key`, `data.eod_token` or `tokenizer_path` are settings,
not secrets. A value that came from such an environment variable (`${oc.env:HF_TOKEN}` put under any
key) is a secret too, wherever it appears.

`redact(container)` replaces secret values with `<redacted>` (MLflow params, the dry run);
`reference_secrets` replaces them with `${oc.env:NAME}` (the run's config.yaml: the job resolves
them from its environment); `scrub_text` hides them in free text (train.log, Hydra's files).

    from nemotron.tracking.secrets import redact
    print(OmegaConf.to_yaml(OmegaConf.create(redact(OmegaConf.to_container(cfg, resolve=True)))))
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional

SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIALS")
"""An upper-case name whose last `_` part is one of these holds a secret."""
REDACTED = "<redacted>"
"""What a secret value is replaced with."""
MIN_SECRET_LEN = 8
"""Shorter values of secret variables are not searched for in other values and text (`MY_TOKEN=none`
would otherwise redact every `none`); keys with secret names are redacted whatever their length."""

_ASSIGNMENT = re.compile(
    r"(?P<name>[A-Za-z_][\w.\-]*)(?P<sep>[ \t]*[=:][ \t]*)(?P<quote>[\"']?)(?P<value>[^\s\"',}]+)"
)


_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_URI_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][\w+.\-]*://[^\s:/@]*:)(?P<password>[^\s@/]+)(?P<at>@)")
"""The password of a URI's user info (`scheme://user:password@host`): a tracking server's basic auth,
a database store's login. Hidden wherever text is shown; its own environment variable in config.yaml."""


def is_secret_name(name: Any, extra: Iterable[str] = ()) -> bool:
    """True when `name`'s last part is an upper-case name ending `_KEY`, `_TOKEN`, ... (or is in `extra`)."""
    last = str(name).rsplit(".", 1)[-1]
    return last in extra or _secret_word_name(last)


@functools.lru_cache(maxsize=4096)
def _secret_word_name(last: str) -> bool:
    """The name rule alone, once per distinct name (a sweep asks it ~300 times a member)."""
    return bool(_ENV_NAME.fullmatch(last)) and last.rsplit("_", 1)[-1] in SECRET_WORDS


def extra_names(container: Any) -> List[str]:
    """The names `cluster.secret_names` adds, from a plain config container ([] when it has none)."""
    cluster = container.get("cluster") if isinstance(container, Mapping) else None
    names = cluster.get("secret_names") if isinstance(cluster, Mapping) else None
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else []


def secret_env_values(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """Values of environment variables with secret names, longest first (for scrubbing)."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def _scrub_values(text: str, values: Iterable[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return hide_uri_passwords(text) if "://" in text else text


def hide_uri_passwords(text: str) -> str:
    """`text` with the password of every `scheme://user:password@host` replaced (a reference such as
    `${oc.env:NAME}` is no secret and stays)."""

    def hide(match: re.Match) -> str:
        if match.group("password").startswith("${"):
            return match.group(0)
        return f"{match.group('head')}{REDACTED}{match.group('at')}"

    return _URI_PASSWORD.sub(hide, text)


def uri_password_name(path: str) -> str:
    """The environment variable a URI's password at config key `path` travels in to the job
    (`tracker.uri` -> NEMOTRON_TRACKER_URI_PASSWORD: a secret name, so the job hides it too)."""
    return "NEMOTRON_" + re.sub(r"[^A-Z0-9]+", "_", path.upper()).strip("_") + "_PASSWORD"


def uri_passwords(container: Any, path: str = "") -> Dict[str, str]:
    """NAME -> password of every URI in a resolved config container that holds one in its user info."""
    found: Dict[str, str] = {}
    if isinstance(container, Mapping):
        for k, v in container.items():
            found.update(uri_passwords(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(container, (list, tuple)):
        for i, v in enumerate(container):
            found.update(uri_passwords(v, f"{path}.{i}"))
    elif isinstance(container, str) and "://" in container:
        for match in _URI_PASSWORD.finditer(container):
            if not match.group("password").startswith("${"):
                found[uri_password_name(path)] = match.group("password")
    return found


def redact(container: Any, environ: Optional[Mapping[str, str]] = None, names: Iterable[str] = ()) -> Any:
    """A copy of a plain config container (dicts, lists, scalars) with secrets replaced.

    Values under secret-named keys become `<redacted>` (null and empty values stay as they are, so a
    printed config still shows whether a secret is set); strings containing a secret value (of a
    secret environment variable or a secret-named key) have it replaced. The input is not modified.
    """
    names = list(names) or extra_names(container)
    values = sorted({*secret_env_values(environ), *long_enough(secret_config_values(container, names))},
                    key=len, reverse=True)
    return _redact(container, values, names)


def long_enough(values: Iterable[str]) -> List[str]:
    """The values long enough to be searched for in other text (see MIN_SECRET_LEN)."""
    return [v for v in values if len(v) >= MIN_SECRET_LEN]


def _redact(node: Any, values: List[str], names: List[str]) -> Any:
    if isinstance(node, Mapping):
        return {k: (REDACTED if is_secret_name(k, names) and v not in (None, "") else _redact(v, values, names))
                for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_redact(v, values, names) for v in node]
    if isinstance(node, str):
        return _scrub_values(node, values)
    return node


def scrub_text(text: str, extra_values: Iterable[str] = (),
               environ: Optional[Mapping[str, str]] = None, names: Iterable[str] = ()) -> str:
    """`text` with secret assignments (`HF_TOKEN=...`, `cluster.env.API_KEY: ...`) and known secret values hidden."""
    return text_scrubber(extra_values, environ, names)(text)


def text_scrubber(extra_values: Iterable[str] = (), environ: Optional[Mapping[str, str]] = None,
                  names: Iterable[str] = ()) -> Callable[[str], str]:
    """`scrub_text` for many texts: the secret values (of the environment as it is now) are found once."""
    names = list(names)
    values = sorted({*secret_env_values(environ), *long_enough(extra_values)}, key=len, reverse=True)

    def hide(match: re.Match) -> str:
        if not is_secret_name(match.group("name"), names) or match.group("value").startswith("${"):
            return match.group(0)  # a reference such as ${oc.env:HF_TOKEN} is no secret
        return f"{match.group('name')}{match.group('sep')}{match.group('quote')}{REDACTED}"

    return lambda text: _ASSIGNMENT.sub(hide, _scrub_values(text, values))


def secret_config_values(container: Any, names: Iterable[str] = ()) -> List[str]:
    """String values under secret-named keys anywhere in a config container (for scrubbing text)."""
    found: List[str] = []
    names = list(names) or extra_names(container)

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, secret or is_secret_name(k, names))
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v, secret)
        elif secret and isinstance(node, str) and node:
            found.append(node)

    walk(container, False)
    return found


def run_secrets(container: Any, environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """NAME -> value of every secret a run needs in its environment, from a resolved config container:
    secret-named entries of `recipe.env` and `cluster.env`, and secret environment variables of this
    process whose value appears anywhere in the config (`+x=${oc.env:HF_TOKEN}`)."""
    env = os.environ if environ is None else environ
    names = extra_names(container)
    found: Dict[str, str] = {}
    for section in ("recipe", "cluster"):
        block = container.get(section) if isinstance(container, Mapping) else None
        entries = block.get("env") if isinstance(block, Mapping) else None
        for k, v in (entries or {}).items():
            if is_secret_name(k, names) and isinstance(v, str) and v:
                found[str(k)] = v
    candidates = {
        k: v for k, v in env.items() if k not in found and is_secret_name(k, names) and len(v) >= MIN_SECRET_LEN
    }
    if candidates:  # the config's strings, walked only when some secret variable could be in them
        strings = list(_strings(container))
        found.update((k, v) for k, v in candidates.items() if any(v in s for s in strings))
    return {**found, **uri_passwords(container)}


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def reference_secrets(container: Any, secrets: Mapping[str, str]) -> Any:
    """A copy of `container` with each secret value replaced by `${oc.env:NAME}`: what the run's
    config.yaml holds; the job, which gets the secrets in its environment, resolves them at start."""
    by_length = sorted(secrets.items(), key=lambda kv: len(kv[1]), reverse=True)
    by_password = {v: k for k, v in secrets.items()}

    def walk(node: Any, key: Any = None) -> Any:
        if isinstance(node, Mapping):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(v) for v in node]
        if not isinstance(node, str) or not node:
            return node
        if key in secrets and node == secrets[key]:
            return f"${{oc.env:{key}}}"
        if "://" in node:  # a URI's password, whatever its length, by the name of the secret holding it
            node = _URI_PASSWORD.sub(lambda m: _password_reference(m, by_password), node)
        for name, value in by_length:
            if len(value) >= MIN_SECRET_LEN or node == value:
                node = node.replace(value, f"${{oc.env:{name}}}")
        return node

    return walk(container)


def _password_reference(match: re.Match, by_password: Mapping[str, str]) -> str:
    name = by_password.get(match.group("password"))
    return match.group(0) if name is None else f"{match.group('head')}${{oc.env:{name}}}{match.group('at')}"
