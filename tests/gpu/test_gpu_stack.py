"""The GPU stack on one CUDA device (marked `gpu`: skipped with "no CUDA device" elsewhere, see
tests/conftest.py): the Transformer Engine spec trains in bf16; packed samples through the SFT stage's
thd path (TE attention, mamba_ssm's seq_idx) have the losses they have alone. The comparisons are
bench/packed_compare.py's, which `python bench/gpu_check.py` also runs."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

pytestmark = pytest.mark.gpu


def _cfg(tmp_path, recipe, *overrides):
    import gpu_check_runs

    opts = SimpleNamespace(root=str(tmp_path), cpu_smoke=False)
    return gpu_check_runs.compose(recipe, opts, ["checkpoint.pretrained=null", *overrides])


def test_te_spec_builds_and_a_bf16_step_runs(tmp_path):
    pytest.importorskip("transformer_engine", reason="transformer_engine not installed")
    import gpu_check_runs
    import torch

    from nemotron.runtime.stages import pretrain

    cfg = _cfg(tmp_path, "gpt/pretrain", "train.steps=2")
    assert gpu_check_runs.stack_of(cfg)["layer_spec"] == "te"
    result = pretrain.run(cfg)
    assert len(result.losses) == 2 and all(math.isfinite(x) for x in result.losses)
    assert torch.cuda.max_memory_allocated() > 0


def _packed_equals_unpacked(tmp_path, recipe):
    import gpu_check_runs
    from packed_compare import compare_packed

    cfg = _cfg(tmp_path, recipe, *gpu_check_runs.SFT_SEQ)
    figures = compare_packed(cfg, gpu_check_runs.BF16_TOLERANCE, gpu_check_runs.COMPARE_INIT_STD)
    assert figures["layout"] == "thd", figures
    assert figures["passed"], figures["why"]
    return cfg


def test_packed_thd_losses_equal_unpacked(tmp_path):
    pytest.importorskip("transformer_engine", reason="transformer_engine not installed")
    _packed_equals_unpacked(tmp_path, "gpt/sft")


def test_mamba_ssm_packed_seq_idx_equals_unpacked(tmp_path):
    pytest.importorskip("transformer_engine", reason="transformer_engine not installed")
    pytest.importorskip("mamba_ssm", reason="mamba_ssm not installed")
    import gpu_check_runs

    cfg = _packed_equals_unpacked(tmp_path, "nano3/sft")
    assert gpu_check_runs.stack_of(cfg)["mamba_mixer"] == "MambaMixer"
