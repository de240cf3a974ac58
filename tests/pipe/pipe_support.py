"""Helpers of the pipeline tests: run `python -m nemotron.pipe`, write a pipeline file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def pipe(*args: str, cwd: Path = REPO, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m nemotron.pipe ARGS` as a subprocess (both streams captured as text)."""
    full = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    full.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "nemotron.pipe", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=timeout,
    )


def write_pipeline(path: Path, stages: list, name: str = "custom") -> Path:
    """A pipeline file at `path` (pass it as pipeline=<path>)."""
    path.write_text(yaml.safe_dump({"name": name, "stages": stages}, sort_keys=False), encoding="utf-8")
    return path


def stage(name: str, recipe: str, overrides=(), consumes=(), produces=None) -> dict:
    return {
        "name": name,
        "recipe": recipe,
        "overrides": list(overrides),
        "consumes": list(consumes),
        "produces": produces or {},
    }


PREP = ["data.generate_tiny=true", "data.num_documents=200", "data.cache_dir={stage_dir}/data"]
"""A data stage on the embedded corpus (a few seconds)."""
DATA_OUT = {"pretrain_data": {"kind": "data", "path": "{stage_dir}/data"}}
CKPT_OUT = {"base_model": {"kind": "checkpoint", "path": "{stage_dir}/checkpoints"}}
PRETRAIN = ["data=prepared", "data.blend_file={pretrain_data}/blend.json"]
