"""The rollout estimate is exactly what generation allocates: KV cache and Mamba-2 state bytes.

A GRPO config's rollout rows (global batch / DP x rl.group_size) and model.seq_length size a real
Megatron `StaticInferenceContext`; one cached prefill of that many prompts through the tiny model
(CPU, fp32: Megatron's attention KV buffers, our TorchMamba2Mixer's conv window and SSM state) fills
it, and the bytes of every tensor it then holds equal the estimate's.
"""

from __future__ import annotations

import pytest
import torch
from runtime_support import resolved_run_config

from nemotron.memory.layout import layout_from_config
from nemotron.memory.rollout import kv_cache_bytes, mamba_state_bytes
from nemotron.runtime import cpu_compat
from nemotron.runtime.model import build as model
from nemotron.runtime.model import generate, inference_compat
from nemotron.runtime.train import distributed

CASES = {
    "gpt_rl": ["+recipe=gpt/rl"],
    "nano3_rl": ["+recipe=nano3/rl"],
}
SMALL_ROLLOUT = ["train.micro_batch_size=1", "train.global_batch_size=3", "rl.group_size=2"]


@pytest.fixture(scope="module")
def config_for(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("memory_rollout")

    def _make(overrides):
        return resolved_run_config([*overrides, *SMALL_ROLLOUT, "tracker=none", "train.num_threads=1"], run_dir)

    distributed.init(_make(["+recipe=gpt/rl"]))
    yield _make
    distributed.teardown()


def cached_bytes(cfg, rows: int) -> int:
    """Bytes the inference context holds after a cached prefill of `rows` prompts."""
    cpu_compat.install()
    cpu_compat.seed_model_parallel(1234)
    net = model.build_model(cfg, 512)[0].eval()
    context = inference_compat.static_context(rows, cfg.model.seq_length)
    prompts = torch.randint(0, 500, (rows, 5))
    with torch.no_grad(), inference_compat.generation_mode():
        generate.forward_logits(net, prompts, 0, context)
    tensors = [t for cached in context.key_value_memory_dict.values() for t in cached]
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize("case", CASES)
def test_rollout_estimate_equals_the_inference_context_bytes(case, config_for):
    cfg = config_for(CASES[case])
    x = layout_from_config(cfg)
    assert x.rollout_rows == 3 * 2  # three prompts on the one rank, two samples each
    assert kv_cache_bytes(x, 0) + mamba_state_bytes(x, 0) == cached_bytes(cfg, x.rollout_rows)
