"""Helpers of the pipeline tests: run `python -m nemotron.pipe`, write a pipeline file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from cli_support import run_module

REPO = Path(__file__).resolve().parents[2]


def pipe(*args: str, cwd: Path = REPO, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m nemotron.pipe ARGS` as a subprocess (both streams captured as text)."""
    return run_module("nemotron.pipe", *args, env=env, cwd=cwd, timeout=timeout)


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
