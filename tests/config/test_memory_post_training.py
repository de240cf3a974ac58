"""The memory estimate of the post-training stages: DPO's and GRPO's reference model, their rows per
micro batch, and GRPO's rollout phase (KV cache and Mamba state) as the peak when it is the larger.

Compose-time only (no torch): the sizes the runtime really allocates are checked in
tests/runtime/test_memory_activations.py (one GRPO micro batch) and test_memory_rollout.py (the
inference context's bytes).
"""

from __future__ import annotations

import pytest

from nemotron.memory import estimate_config, fit_problem, table
from nemotron.memory.estimate import FRAGMENTATION, GPU_FIXED_BYTES

POST_TRAINING = ["gpt/rl", "nano3/rl", "gpt/dpo", "nano3/dpo"]
ON_GPUS = ["cluster=dgx"]  # the recipes' tiny models, as bf16 weights on 80 GB GPUs
GPT_8B_RL = [
    "+recipe=gpt/rl",
    "model=gpt_8b",
    "cluster=dgx",
    "parallel.tensor_model_parallel_size=4",
    "parallel.sequence_parallel=true",
    "train.micro_batch_size=1",
    "model.seq_length=4096",
    "tracker=none",
]
LONG_ROLLOUT = ["train.global_batch_size=512", "rl.group_size=8"]
"""512 prompts a step over DP 2 (8 GPUs / TP4), 8 samples each: 2048 sequences per rank."""
PERSISTENT = ("weights", "gradients", "optimizer", "reference")


def _row(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.split()[:1] == [name])


@pytest.mark.parametrize("device", [[], ON_GPUS], ids=["cpu_fp32", "gpu_bf16"])
@pytest.mark.parametrize("recipe", POST_TRAINING)
def test_the_reference_is_a_copy_of_this_ranks_parameters_in_the_weights_dtype(compose, recipe, device):
    cfg = compose([f"+recipe={recipe}", "tracker=none", *device])
    est = estimate_config(cfg)
    dtype_bytes = 2 if device else 4
    assert est.parts["reference"] == est.params * dtype_bytes > 0
    assert _row(table(cfg, est), "reference")


NO_REFERENCE = {
    "gpt_rl_no_kl": ["+recipe=gpt/rl", "rl.kl=false"],
    "nano3_rl_no_kl": ["+recipe=nano3/rl", "rl.kl=false"],
    "pretrain": ["+recipe=gpt/pretrain"],
    "sft": ["+recipe=gpt/sft"],
}


@pytest.mark.parametrize("case", NO_REFERENCE)
def test_without_a_kl_term_or_a_post_training_stage_there_is_no_reference(compose, case):
    cfg = compose([*NO_REFERENCE[case], "tracker=none"])
    est = estimate_config(cfg)
    assert est.parts["reference"] == 0
    assert "reference" not in table(cfg, est)


@pytest.mark.parametrize("recipe", ["gpt/rl", "nano3/rl"])
def test_rl_training_activations_scale_with_the_group_size(compose, recipe):
    def training(group: int):
        est = estimate_config(compose([f"+recipe={recipe}", "tracker=none", f"rl.group_size={group}"]))
        assert est.peak_phase == "training"
        return est.parts["activations"]

    assert training(8) == pytest.approx(2 * training(4))


def test_a_long_rollout_is_the_peak_and_the_total_is_persistent_plus_its_kv_cache(compose):
    cfg = compose(GPT_8B_RL + LONG_ROLLOUT)
    est = estimate_config(cfg)
    m = cfg.model
    rows = 512 // 2 * 8
    groups_per_rank = m.num_query_groups // 4
    kv = m.num_layers * 2 * rows * m.seq_length * groups_per_rank * m.kv_channels * 2  # K and V, bf16
    assert est.peak_phase == "rollout" and est.phases["training"] < kv
    assert est.parts["activations"] == kv
    persistent = sum(est.parts[name] for name in PERSISTENT)
    assert est.total == pytest.approx((persistent + kv) * (1 + FRAGMENTATION) + GPU_FIXED_BYTES)
    assert "(rollout: KV cache; training " in _row(table(cfg, est), "activations")


def test_a_hybrid_rollout_holds_kv_cache_and_mamba_state(compose):
    cfg = compose(["+recipe=nano3/rl", "tracker=none", "train.micro_batch_size=1", *LONG_ROLLOUT])
    est = estimate_config(cfg)
    m = cfg.model
    rows = 512 * 8  # one CPU rank
    pattern = m.hybrid_layer_pattern
    heads = 2 * m.hidden_size // m.mamba_head_dim
    conv_channels = heads * m.mamba_head_dim + 2 * m.mamba_num_groups * m.mamba_state_dim
    ssm = heads * m.mamba_head_dim * m.mamba_state_dim
    mamba = pattern.count("M") * rows * (conv_channels * 3 * 4 + ssm * 4)  # TorchMamba2Mixer, fp32
    kv_channels = m.hidden_size // m.num_attention_heads
    kv = pattern.count("*") * 2 * rows * m.seq_length * m.num_query_groups * kv_channels * 4
    assert est.peak_phase == "rollout"
    assert est.total == sum(est.parts[name] for name in PERSISTENT) + kv + mamba  # CPU: no allowance
    assert "(rollout: KV cache + Mamba state; training " in _row(table(cfg, est), "activations")


def test_a_rollout_too_large_for_any_layout_says_what_holds_it(compose):
    problem = fit_problem(compose(GPT_8B_RL + LONG_ROLLOUT))
    assert "no one or two changes fit: the rollout's KV cache holds train.global_batch_size / DP x" in problem


@pytest.mark.parametrize("family", ["gpt", "nano3"])
def test_dpo_activations_are_chosen_plus_rejected_rows_of_the_sft_shape(compose, family):
    def activations(recipe: str, micro_batch: int) -> float:
        cfg = compose([f"+recipe={family}/{recipe}", "tracker=none", f"train.micro_batch_size={micro_batch}"])
        return estimate_config(cfg).parts["activations"]

    assert activations("dpo", 2) == pytest.approx(2 * activations("sft", 2))
    assert activations("dpo", 2) == pytest.approx(activations("sft", 4))


def test_rl_halving_the_micro_batch_is_suggested_with_its_real_value_and_fits(compose):
    # With the vocab-parallel loss the distributed optimizer alone fits at seq 2048; at 4096 with it on,
    # only the micro batch is left to halve.
    layout = GPT_8B_RL + ["parallel.use_distributed_optimizer=true", "train.micro_batch_size=2", "rl.group_size=4"]
    problem = fit_problem(compose(layout))
    change = problem.split("cheapest change that fits: ")[1].split(" (")[0]
    assert change == "train.micro_batch_size=1"
    assert fit_problem(compose(layout + [change])) is None


def test_dpo_fixes_never_suggest_pipeline_parallelism_which_dpo_refuses(compose):
    layout = [
        "+recipe=gpt/dpo",
        "model=gpt_8b",
        "cluster=dgx",
        "cluster.gpu_memory_gb=24",
        "resources.nodes=2",
        "parallel.tensor_model_parallel_size=8",
        "parallel.sequence_parallel=true",
        "parallel.use_distributed_optimizer=true",
        "train.micro_batch_size=1",
        "model.seq_length=4096",
        "tracker=none",
    ]
    problem = fit_problem(compose(layout))
    change = problem.split("cheapest change that fits: ")[1].split(" (")[0]
    assert "pipeline" not in change  # PP 2 alone would fit: the search used to name it
    assert fit_problem(compose(layout + change.split())) is None
