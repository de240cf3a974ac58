"""The memory estimate of the post-training stages: DPO's and GRPO's reference model and their rows
per micro batch. Compose-time only (no torch).
"""

from __future__ import annotations

import pytest

from nemotron.memory import estimate_config, fit_problem, table

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
        cfg = compose([f"+recipe={recipe}", "tracker=none", f"rl.group_size={group}"])
        return estimate_config(cfg).parts["activations"]

    assert training(8) == pytest.approx(2 * training(4))


@pytest.mark.parametrize("family", ["gpt", "nano3"])
def test_dpo_activations_are_chosen_plus_rejected_rows_of_the_sft_shape(compose, family):
    def activations(recipe: str, micro_batch: int) -> float:
        cfg = compose([f"+recipe={family}/{recipe}", "tracker=none", f"train.micro_batch_size={micro_batch}"])
        return estimate_config(cfg).parts["activations"]

    assert activations("dpo", 2) == pytest.approx(2 * activations("sft", 2))
    assert activations("dpo", 2) == pytest.approx(activations("sft", 4))


def test_rl_halving_the_micro_batch_is_suggested_with_its_real_value_and_fits(compose):
    layout = GPT_8B_RL + ["model.seq_length=2048", "train.micro_batch_size=2", "rl.group_size=4"]
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
