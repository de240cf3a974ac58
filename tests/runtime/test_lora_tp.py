"""Adapters saved at TP=2 load at TP=1 (as merge-lora and export-hf --adapter read them) with B's
rows where the unsharded layer has them: SwiGLU fc1's gate/up and Mamba in_proj's z/x/B/C/dt are each
split across ranks on their own, as Megatron saves the base weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from dist_support import torchrun
from lora_layout import MODELS, lora_config

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lora_tp")
    done = torchrun([HERE / "tp_lora_worker.py", out])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_tp2_adapters_load_at_tp1_with_each_row_in_place(saved, name):
    from megatron.core import dist_checkpointing

    from nemotron.hf import megatron_side as ours
    from nemotron.runtime.peft import lora, state
    from nemotron.runtime.train import distributed

    cfg = lora_config(name, tp=1)
    try:
        model = ours.build(cfg)
        lora.apply(cfg, model)
        setattr(model, state.RECORD, {"layout": "tp1"})
        sd = state.model_sharded_state_dict(model)
        state.load_model_state(model, dist_checkpointing.load(sd, str(saved / name / "iter_0000000")))
    finally:
        distributed.teardown()
    columns = {
        q: m.adapter for q, m in model.named_modules() if isinstance(m, lora.LoRALinear) and m.adapter.kind == "column"
    }
    assert any(q.endswith("linear_fc1") for q in columns) and (
        name == "gpt_tiny" or any(q.endswith("in_proj") for q in columns)
    )
    for qualified, adapter in columns.items():
        b = adapter.linear_out.weight[:, 0]
        assert torch.equal(b, torch.arange(b.shape[0], dtype=b.dtype)), qualified
