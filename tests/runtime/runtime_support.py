"""Fixtures for the runtime tests: one generated tiny dataset per session, and run configs.

Importing megatron costs ~6 s per process, so these tests train in-process; the tiny corpus,
tokenizer and Megatron index caches are generated once per session and shared. Test modules import
the fixtures from here (`from runtime_support import run_config, tiny_data_dir`); this is not a
conftest.py because tests elsewhere import the top-level one as plain `conftest`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf


_SHARED: dict[str, Path] = {}
REPO = Path(__file__).resolve().parents[2]
TWO_RANK_COMMON = ["train.steps=8", "train.log_interval=1", "train.num_threads=1", "tracker=jsonl"]


def train_two_ranks(tmp_path: Path, data_dir: Path, recipe: str, *overrides: str) -> list[float]:
    """Per-step losses of a 2-rank local run (`python -m nemotron.train`, PyTorch's elastic launcher,
    gloo), read from its metrics.jsonl; `overrides` come after `TWO_RANK_COMMON`."""
    argv = [sys.executable, "-m", "nemotron.train", f"+recipe={recipe}", "resources.procs_per_node=2",
            f"paths.output_root={tmp_path}", f"data.cache_dir={data_dir}", *TWO_RANK_COMMON, *overrides]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (metrics,) = tmp_path.rglob("metrics.jsonl")
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """A data cache directory shared by every runtime test of the session (and every module)."""
    if "data" not in _SHARED:
        _SHARED["data"] = tmp_path_factory.mktemp("tiny_data")
    return _SHARED["data"]


def resolved_run_config(overrides: list[str], run_dir: Path) -> DictConfig:
    """Compose like `python -m nemotron.train` does, then resolve, as the recipe script receives it."""
    from nemotron.config.compose import compose_run

    cfg = compose_run(overrides, run_dir=run_dir)
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


@pytest.fixture
def run_config(tiny_data_dir, tmp_path):
    """run_config(recipe, *overrides): a resolved 1-thread, untracked config on the shared data."""

    def _make(recipe: str, *overrides: str) -> DictConfig:
        base = [f"+recipe={recipe}", "train.num_threads=1", "tracker=none", f"data.cache_dir={tiny_data_dir}"]
        return resolved_run_config([*base, *overrides], run_dir=tmp_path / "run")

    return _make


@pytest.fixture(scope="module")
def process_group():
    """A world-size-1 gloo group (Megatron's dataset builder needs one), destroyed afterwards."""
    import torch.distributed as dist

    from nemotron.runtime.train import distributed

    created = distributed.init_process_group()
    yield
    if created:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def megatron_world():
    """World size 1 (gloo), TP=PP=1, the CPU patches; torn down after the module."""
    import torch.distributed as dist
    from megatron.core import parallel_state

    from nemotron.runtime import cpu_compat
    from nemotron.runtime.train import distributed

    created = distributed.init_process_group()
    parallel_state.initialize_model_parallel(1, 1)
    cpu_compat.install()
    yield
    cpu_compat.destroy_model_parallel_groups()
    if created:
        dist.destroy_process_group()


def killed_at_step(run_stage, cfg, monkeypatch, step: int) -> None:
    """Run `run_stage(cfg)` until training step `step` (1-based) begins, then stop it as a kill would:
    a KeyboardInterrupt raised from the step function, after the checkpoints saved before it."""
    from nemotron.runtime.train import step as train_step_module

    real = train_step_module.train_step

    def crash(run):
        if run.position.step + 1 == step:
            raise KeyboardInterrupt("simulated kill")
        return real(run)

    with monkeypatch.context() as m:
        m.setattr(train_step_module, "train_step", crash)
        with pytest.raises(KeyboardInterrupt):
            run_stage(cfg)
