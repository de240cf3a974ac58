"""The memory estimate of a LoRA run (`peft=lora`): the adapters it counts are the ones the runtime
wraps (Megatron builds the tiny gpt and nano3 models and `lora.apply` wraps them), and only they have
gradients and optimizer state; the frozen base is its weights alone."""

from __future__ import annotations

import pytest
from runtime_support import resolved_run_config

from nemotron.memory.adapters import stage_adapters
from nemotron.memory.estimate import estimate
from nemotron.memory.layout import layout_from_config
from nemotron.memory.params import stage_params


@pytest.mark.parametrize("recipe", ["gpt/sft", "nano3/sft"])
def test_the_estimate_counts_the_adapters_the_runtime_wraps_and_no_optimizer_state_for_the_base(recipe, tmp_path):
    from nemotron.hf import megatron_side as ours
    from nemotron.runtime.peft import lora
    from nemotron.runtime.train import distributed

    common = [f"+recipe={recipe}", "model.vocab_size=256", "tracker=none", "peft.rank=4"]
    cfg = resolved_run_config([*common, "peft=lora"], run_dir=tmp_path / "run")
    full = layout_from_config(resolved_run_config(common, run_dir=tmp_path / "full"))
    x = layout_from_config(cfg)
    try:
        model = ours.build(cfg)
        total = sum(p.numel() for p in model.parameters())
        lora.apply(cfg, model)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    finally:
        distributed.teardown()
    adapters = sum(stage_adapters(x, 0))
    assert trainable == adapters > 0
    assert stage_params(x, 0).count == total  # the base, as without LoRA
    assert sum(stage_adapters(full, 0)) == 0
    lora_est, full_est = estimate(x).parts, estimate(full).parts
    assert lora_est["optimizer"] == adapters * 8  # CPU: fp32 Adam moments; none for the base
    assert lora_est["gradients"] == adapters * 4
    assert lora_est["weights"] == (total + adapters) * 4
    assert full_est["optimizer"] == total * 8 and full_est["activations"] == lora_est["activations"]
