"""OmegaConf resolvers the shipped configs use; registering them imports nothing heavy.

- `${nemotron.local_gpus:}`: GPUs this machine exposes, counted without importing torch
  (CUDA_VISIBLE_DEVICES when set, else the NVIDIA driver's /proc entries, else 0).
- `${nemotron.local_gpu_memory_gb:}`: memory of this machine's smallest GPU in GiB (nvidia-smi,
  asked only when there are GPUs), null without GPUs or a driver that answers.
- `${nemotron.min:a,b}`: the smaller of two integers.
- `${nemotron.recipes_help:}`: one line per discovered recipe, for `--help`.
- `${art:name}`, `${art:name@version}`: a registered artifact's path (nemotron/tracking/registry.py).
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

NVIDIA_PROC_GPUS = Path("/proc/driver/nvidia/gpus")


def local_gpus() -> int:
    """GPUs visible to processes started from here."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
        return len(ids)
    if NVIDIA_PROC_GPUS.is_dir():
        return sum(1 for _ in NVIDIA_PROC_GPUS.iterdir())
    return 0


def local_gpu_memory_gb() -> Optional[float]:
    """Memory of the smallest visible GPU in GiB as nvidia-smi reports it; None when unknown. Asked once per
    process for each CUDA_VISIBLE_DEVICES (a compose resolves this key several times; nvidia-smi takes
    0.1 s or more)."""
    if local_gpus() == 0:
        return None
    return smallest_gpu_gb(os.environ.get("CUDA_VISIBLE_DEVICES"))


@functools.lru_cache(maxsize=8)
def smallest_gpu_gb(visible: Optional[str]) -> Optional[float]:
    """nvidia-smi's smallest GPU memory in GiB with `visible` as CUDA_VISIBLE_DEVICES (the cache key)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return round(min(float(v) for v in out.split()) / 1024, 1)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def recipes_help() -> str:
    """'  nano3/pretrain    recipes/nano3/pretrain/train.py (torchrun, 1 node x 8 GPUs)' lines."""
    from nemotron.common.paths import recipe_roots
    from nemotron.runspec.parser import discover

    found = discover([r for r in recipe_roots() if r.is_dir()])
    width = max((len(n) for n in found), default=0) + 2
    lines = [
        f"  {name:<{width}}{spec.script} ({spec.launch}, {spec.nodes} node(s) x {spec.gpus_per_node} GPUs)"
        for name, spec in sorted(found.items())
    ]
    return "\n".join(lines) or "  (none found)"


def register_resolvers() -> None:
    """Register the resolvers once per process (idempotent)."""
    if not OmegaConf.has_resolver("nemotron.local_gpus"):
        OmegaConf.register_new_resolver("nemotron.local_gpus", local_gpus)
    if not OmegaConf.has_resolver("nemotron.local_gpu_memory_gb"):
        OmegaConf.register_new_resolver("nemotron.local_gpu_memory_gb", local_gpu_memory_gb)
    if not OmegaConf.has_resolver("nemotron.min"):
        OmegaConf.register_new_resolver("nemotron.min", lambda a, b: min(int(a), int(b)))
    from nemotron.tracking.registry import register_resolver as register_artifact_resolver

    register_artifact_resolver()  # ${art:name} / ${art:name@version}: light, no mlflow
    if not OmegaConf.has_resolver("nemotron.recipes_help"):
        OmegaConf.register_new_resolver("nemotron.recipes_help", recipes_help)
