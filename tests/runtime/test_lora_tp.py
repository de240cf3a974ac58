"""Adapters saved at TP=2 load at TP=1 (as merge-lora and export-hf --adapter read them) with B's
rows where the unsharded layer has them: SwiGLU fc1's gate/up and Mamba in_proj's z/x/B/C/dt are each
split across ranks on their own, as Megatron saves the base weights. End to end: LoRA SFT at TP=2 (two
real ranks) has the TP=1 run's losses, and its merged checkpoint the TP=1 merged weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import runtime_support
import torch
from dist_support import torchrun
from lora_layout import MODELS, lora_config
from runtime_support import train_two_ranks

run_config = runtime_support.run_config  # fixtures shared by the runtime tests
tiny_data_dir = runtime_support.tiny_data_dir
LORA = ["peft=lora", "peft.rank=4", "train.steps=4", "train.log_interval=1", "train.eval_interval=0", "optim.lr=0.01"]

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


@pytest.mark.slow
def test_tp2_lora_sft_has_the_tp1_losses_and_merged_weights(run_config, tiny_data_dir, tmp_path):
    from nemotron.hf.cli import main
    from nemotron.runtime.stages import pretrain
    from nemotron.runtime.stages.sft import SFTStage
    from nemotron.runtime.train import loop

    base = tmp_path / "base"
    pretrain.run(run_config("gpt/pretrain", "train.steps=3", f"checkpoint.dir={base}"))
    lora = [*LORA, f"checkpoint.pretrained={base}"]
    tp1 = loop.run(run_config("gpt/sft", *lora, f"checkpoint.dir={tmp_path / 'tp1'}"), SFTStage()).losses
    tp2 = train_two_ranks(
        tmp_path / "two", tiny_data_dir, "gpt/sft", *lora, "tracker=jsonl",
        "parallel.tensor_model_parallel_size=2", f"checkpoint.dir={tmp_path / 'tp2'}",
    )  # fmt: skip
    assert len(tp1) == 4 and tp2 == pytest.approx(tp1, abs=1e-4)
    from nemotron.hf.merge_lora import adapted_model
    from nemotron.runtime.train import distributed

    try:
        cfg = adapted_model(str(tmp_path / "tp1"))[1]  # the run's config, vocabulary size included
    finally:
        distributed.teardown()
    weights = {}
    for name, source in (("base", base), ("tp1", tmp_path / "merged_tp1"), ("tp2", tmp_path / "merged_tp2")):
        if name != "base":
            assert main(["merge-lora", str(tmp_path / name), str(source)]) == 0
        weights[name] = _weights(cfg, source)
    assert weights["tp1"].keys() == weights["tp2"].keys() == weights["base"].keys()
    for key, want in weights["tp1"].items():
        torch.testing.assert_close(weights["tp2"][key], want, rtol=1e-5, atol=1e-5, msg=key)
    assert any((weights["tp1"][k] - weights["base"][k]).abs().max() > 1e-4 for k in weights["base"])  # LoRA moved


def _weights(cfg, checkpoint) -> dict:
    """Every tensor of the model `cfg` describes, loaded from `checkpoint`, at TP=1."""
    from nemotron.hf import megatron_side as ours
    from nemotron.runtime.train import distributed

    try:
        model = ours.build(cfg)
        ours.load(cfg, model, str(checkpoint))
        return {k: v.detach().clone() for k, v in model.state_dict().items() if torch.is_tensor(v)}
    finally:
        distributed.teardown()
