"""Version ranges of the compat modules, checked without third-party packages (stdlib only).

Each compat module (launchers/submitit_compat.py, nemotron/config/hydra_compat.py,
nemotron/runtime/transformers_compat.py, nemotron/hf/dcp_compat.py, nemotron/runtime/cpu_compat.py,
nemotron/runtime/model/inference_compat.py) names the range it was checked against as
`SUPPORTED = {"<distribution>": "<specifier>"}`, in pyproject's syntax; tests/test_dependencies.py fails
when pyproject.toml's requirement admits other versions. A specifier is comma-separated clauses of
`>=`, `>`, `<=`, `<`, `==`, `!=` and a release (`1.5`, `0.16.1`); versions compare by their release
numbers only, so a build tag (`2.13.0+cpu`) or a container's pre-release (`2.9.0a0+git`) counts as
its release.
"""

from __future__ import annotations

import operator
import re
from typing import Callable, Dict, Optional, Tuple

_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)\s*$")
_RELEASE = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")
_OPS: Dict[str, Callable[[Tuple[int, ...], Tuple[int, ...]], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


def release(version: str) -> Tuple[int, ...]:
    """(1, 5, 4) for "1.5.4", "1.5.4.post1", "1.5.4+cpu"; trailing zeros dropped ("1.5.0" == "1.5")."""
    found = _RELEASE.match(version)
    if found is None:
        raise ValueError(f"not a version: {version!r}")
    parts = [int(p) for p in found.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def admits(spec: str, version: str) -> bool:
    """Whether `version` satisfies every clause of `spec` (">=1.5,<1.6")."""
    have = release(version)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        found = _CLAUSE.match(clause)
        if found is None:
            raise ValueError(f"unsupported version clause {clause!r} in {spec!r}")
        if not _OPS[found.group(1)](have, release(found.group(2))):
            return False
    return True


def installed(distribution: str) -> Optional[str]:
    """The installed version of `distribution`; None when it is not installed (importlib.metadata loads
    here: it costs ~10 ms, and the compose path's checks pass the versions they know)."""
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def refusal(supported: Dict[str, str], module: str, versions: Optional[Dict[str, str]] = None) -> Optional[str]:
    """One line when an installed distribution is outside its range in `supported`, else None.
    `versions` gives the installed versions (default: the installed distributions' metadata)."""
    for name, spec in supported.items():
        version = (versions or {}).get(name) or installed(name)
        if version is not None and not admits(spec, version):
            return f"{module} was checked against {name}{spec}; {version} is installed: pip install '{name}{spec}'"
    return None
