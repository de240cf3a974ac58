"""The stack this process really has: Transformer Engine and mamba_ssm imported, not assumed.

Compose decided what the job's environment should hold (nemotron/common/stack.py, from
`cluster.transformer_engine` / `cluster.mamba_ssm` or this machine's packages). Here the job imports
them. A package that is installed but fails to import (a CUDA extension built against another torch,
a missing causal-conv1d kernel) is never a silent fallback: one warning line on stderr names the
import error and the slower path the run takes instead. A package the config declares absent
(`cluster.transformer_engine=false`) is not used even where it imports.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Any, Optional

from nemotron.common import stack as stacks
from nemotron.runtime import cpu_compat

SLOWER_PATH = {
    "transformer_engine.pytorch": "Megatron-Core's local layer spec (unfused attention, no sequence parallelism)",
    "mamba_ssm": "the pure-PyTorch Mamba-2 mixer (nemotron/runtime/model/mamba2.py)",
}
"""What a run builds instead when the module does not import."""


@functools.lru_cache(maxsize=None)
def import_error(module: str) -> Optional[str]:
    """None when `module` imports; else why not (`not installed`, or the import error in one line)."""
    if not stacks.installed(module.split(".")[0]):
        return "not installed"
    try:
        importlib.import_module(module)
    except Exception as err:  # noqa: BLE001 - ImportError, or a CUDA/linker error of a broken build
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        print(f"warning: {module} is installed but does not import ({reason}); this run uses "
              f"{SLOWER_PATH.get(module, 'a slower path')}", file=sys.stderr, flush=True)
        return reason
    return None


def _declared(cfg: Any, key: str) -> Optional[bool]:
    cluster = cfg.get("cluster") if hasattr(cfg, "get") else getattr(cfg, "cluster", None)
    if cluster is None:
        return None
    return cluster.get(key) if hasattr(cluster, "get") else getattr(cluster, key, None)


def runtime_stack(cfg: Any) -> stacks.Stack:
    """What this process can build with: imported (on a GPU) and not declared absent by the config."""
    if cpu_compat.on_cpu():
        return stacks.Stack(False, False, "this CPU process")
    te = _declared(cfg, "transformer_engine") is not False and import_error("transformer_engine.pytorch") is None
    mamba = _declared(cfg, "mamba_ssm") is not False and import_error("mamba_ssm") is None
    return stacks.Stack(te, mamba, "this job's python")
