"""Where a run is tracked: URI, experiment and run name, from config and MLFLOW_* variables (stdlib only).

Precedence, highest first:

- URI: `tracker.uri` (config or command line) > `$MLFLOW_TRACKING_URI` >
  `sqlite:///<paths.output_root>/mlflow.db` (absolute path; artifacts next to it in `mlartifacts/`).
- experiment: `tracker.experiment` > `$MLFLOW_EXPERIMENT_NAME` > the recipe name (`nano3/pretrain`).
- run name: `tracker.run_name` > a sweep member's overrides (`0: optim.lr=0.001`) > the run directory's name.

Every other MLFLOW_* variable (MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME, ...) is read by MLflow
itself. `short_timeouts()` sets MLFLOW_HTTP_REQUEST_MAX_RETRIES=0 and MLFLOW_HTTP_REQUEST_TIMEOUT=5
unless they are set already, so an unreachable server costs seconds, not MLflow's default minutes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

PARENT_RUN_ENV = "NEMOTRON_MLFLOW_PARENT_RUN_ID"
"""Set by the sweep callback for every member of a `-m` sweep: the parent run to nest under."""
MEMBER_ENV = "NEMOTRON_SWEEP_MEMBER"
"""Set by the sweep callback per member: JSON {"num": n, "overrides": [...the swept key=value...]}."""
TIMEOUT_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
"""Applied when unset: one try per request, 5 s each; the tracker retries with its own backoff."""
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_NETWORK_SCHEMES = ("http", "https")


def _get(cfg: Any, dotted: str, default: Any = None) -> Any:
    node = cfg
    for part in dotted.split("."):
        node = node.get(part) if hasattr(node, "get") else getattr(node, part, None)
        if node is None:
            return default
    return node


def default_store_uri(cfg: Any) -> str:
    """`sqlite:///<absolute paths.output_root>/mlflow.db`."""
    root = Path(_get(cfg, "paths.output_root", "outputs")).expanduser().resolve()
    return f"sqlite:///{root / 'mlflow.db'}"


def tracking_uri(cfg: Any) -> str:
    """tracker.uri > $MLFLOW_TRACKING_URI > the sqlite store under paths.output_root."""
    return _get(cfg, "tracker.uri") or os.environ.get("MLFLOW_TRACKING_URI") or default_store_uri(cfg)


def experiment_name(cfg: Any) -> str:
    """tracker.experiment > $MLFLOW_EXPERIMENT_NAME > recipe name > 'nemotron'."""
    return (_get(cfg, "tracker.experiment") or os.environ.get("MLFLOW_EXPERIMENT_NAME")
            or _get(cfg, "recipe.name") or "nemotron")


KNOWN_SCHEMES = ("http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc")
"""The tracking-store schemes MLflow ships (`postgresql+psycopg2` counts as postgresql); checked without mlflow."""


def uri_problem(uri: str) -> Optional[str]:
    """Why `uri` cannot be a tracking URI, or None. Catches typos, not unreachable servers."""
    if not uri or not uri.strip():
        return "the tracking URI is empty"
    try:
        parsed = urlparse(uri)
    except ValueError as exc:
        return f"{uri!r} is not a URI ({exc})"
    if not parsed.scheme or len(parsed.scheme) == 1:  # no scheme, or a Windows drive letter
        return None if "://" not in uri else f"{uri!r} has no scheme before '://'"
    if not _SCHEME.match(parsed.scheme):
        return f"{uri!r} has an invalid scheme {parsed.scheme!r}"
    if parsed.scheme in _NETWORK_SCHEMES and not parsed.hostname:
        return f"{uri!r} names no host (expected e.g. http://127.0.0.1:5000)"
    if parsed.scheme in _NETWORK_SCHEMES:
        try:
            parsed.port  # noqa: B018 - raises on a non-numeric port
        except ValueError:
            return f"{uri!r} has an invalid port"
    if "://" not in uri and parsed.scheme not in ("databricks", "databricks-uc", "uc"):
        return f"{uri!r} looks like host:port without a scheme (expected e.g. http://{uri})"
    if parsed.scheme.split("+")[0] not in KNOWN_SCHEMES:
        return f"{uri!r}: MLflow has no store for scheme {parsed.scheme!r} (known: {', '.join(KNOWN_SCHEMES)})"
    return None


def experiment_problem(name: str) -> Optional[str]:
    """Why MLflow would refuse `name` as an experiment name, or None."""
    if not name.strip():
        return "the experiment name is empty"
    if len(name) > 500:
        return f"the experiment name is {len(name)} characters long (MLflow allows 500)"
    if any(ord(c) < 32 for c in name):
        return f"the experiment name {name!r} contains control characters"
    return None


def short_timeouts() -> None:
    """Cap MLflow's HTTP retries and timeout unless the user set them (see TIMEOUT_DEFAULTS)."""
    for key, value in TIMEOUT_DEFAULTS.items():
        os.environ.setdefault(key, value)


def is_local_store(uri: str) -> bool:
    """True for a sqlite store (the default), whose artifacts this package places next to the db."""
    return uri.startswith("sqlite:///")


def local_artifact_root(uri: str) -> str:
    """`<dir of the sqlite db>/mlartifacts` as a file URI."""
    db = Path(uri[len("sqlite:///"):])
    return (db.parent / "mlartifacts").resolve().as_uri()
