"""The DPO loss: a hand computation on numbers, the same on a real Megatron-Core model's log-softmax,
zero gradient when chosen equals rejected, and beta <= 0 refused at compose.
"""

from __future__ import annotations

import math

import pytest
import runtime_support
import torch

from nemotron.runtime.stages import dpo

run_config = runtime_support.run_config  # fixtures shared by the runtime tests
tiny_data_dir = runtime_support.tiny_data_dir


def _hand_loss(pc, pr, rc, rr, beta, eps):
    z = beta * ((pc - rc) - (pr - rr))
    sig = 1 / (1 + math.exp(-z))
    return -(1 - eps) * math.log(sig) - eps * math.log(1 - sig)


def test_dpo_loss_matches_a_hand_computation():
    # pair 0: z = 0.1 x ((-1 + 2) - (-3 + 2.5)) = 0.15; pair 1: z = 0.1 x ((-4 + 3) - (-2 + 2)) = -0.1
    pc, pr, rc, rr = ([-1.0, -4.0], [-3.0, -2.0], [-2.0, -3.0], [-2.5, -2.0])
    as_t = [torch.tensor(v, dtype=torch.float64) for v in (pc, pr, rc, rr)]
    loss, chosen, rejected = dpo.dpo_loss(*as_t, beta=0.1)
    assert loss.tolist() == pytest.approx([math.log(1 + math.exp(-0.15)), math.log(1 + math.exp(0.1))])
    assert chosen.tolist() == pytest.approx([0.1, -0.1]) and rejected.tolist() == pytest.approx([-0.05, 0.0])
    smoothed, _, _ = dpo.dpo_loss(*as_t, beta=0.1, label_smoothing=0.2)
    assert smoothed[0].item() == pytest.approx(0.8 * math.log(1 + math.exp(-0.15)) + 0.2 * math.log(1 + math.exp(0.15)))


@pytest.fixture(scope="module")
def megatron_world():
    import torch.distributed as dist
    from megatron.core import parallel_state

    from nemotron.runtime import cpu_compat
    from nemotron.runtime.train import distributed

    distributed.init_process_group()
    parallel_state.initialize_model_parallel(1, 1)
    cpu_compat.install()
    yield
    cpu_compat.destroy_model_parallel_groups()
    dist.destroy_process_group()


@pytest.fixture
def pairs_and_models(run_config, megatron_world):
    """(cfg, one micro-batch of 2 pairs, policy, reference): two different random tiny GPTs."""
    from nemotron.runtime import cpu_compat
    from nemotron.runtime.data import dpo as dpo_data
    from nemotron.runtime.data import gpt as data
    from nemotron.runtime.model.build import build_model

    cfg = run_config("gpt/dpo", "train.micro_batch_size=2", "checkpoint.pretrained=null")
    tokenizer, train, _ = dpo_data.build_dpo_datasets(cfg, attention_mask=True)
    models = []
    for seed in (1, 2):
        cpu_compat.seed_model_parallel(seed)
        models.append(build_model(cfg, tokenizer.vocab_size)[0])
    return cfg, next(data.batch_iterator(train, 2, 0, 1)), *models


def _answer_logps_by_hand(model, rows):
    """Sum of log_softmax(logits)[label] over each row's answer tokens."""
    logits = model(rows["tokens"], rows["position_ids"], rows["attention_mask"])
    logp = torch.log_softmax(logits.double(), -1).gather(-1, rows["labels"][..., None])[..., 0]
    return (logp * rows["loss_mask"].double()).sum(-1).view(-1, 2)


def test_stage_loss_on_a_real_model_matches_the_hand_computation(pairs_and_models):
    _, batch, policy, reference = pairs_and_models
    state = dpo.DPOStage(beta=0.3, label_smoothing=0.1, reference=reference)
    output, loss_of = state.forward_step(iter([dict(batch)]), policy)
    loss, pairs, report = loss_of(output)
    with torch.no_grad():
        rows = dpo.flatten_pairs({k: v for k, v in batch.items() if k != "segment_ids"})
        pol, ref = _answer_logps_by_hand(policy, rows), _answer_logps_by_hand(reference, rows)
    hand = [
        _hand_loss(*(float(t[i, j]) for t, j in ((pol, 0), (pol, 1), (ref, 0), (ref, 1))), 0.3, 0.1) for i in range(2)
    ]
    assert int(pairs) == 2 and loss.item() == pytest.approx(sum(hand), rel=1e-5)
    assert report["lm loss"].tolist() == pytest.approx([sum(hand), 2.0], rel=1e-5)
    chosen = 0.3 * (pol[:, 0] - ref[:, 0])
    assert state.sums[0].item() == pytest.approx(chosen.sum().item(), rel=1e-5, abs=1e-7)
    assert state.sums[-1].item() == 2  # pairs counted for the step's metrics (training mode)


def _grad_norm_after_backward(state, batch, policy) -> float:
    policy.zero_grad(set_to_none=True)
    output, loss_of = state.forward_step(iter([batch]), policy)
    loss_of(output)[0].backward()
    grads = [p.grad.flatten() for p in policy.parameters() if p.grad is not None]
    return torch.cat(grads).abs().max().item() if grads else 0.0


def test_chosen_equal_to_rejected_gives_zero_gradient(pairs_and_models):
    _, batch, policy, reference = pairs_and_models
    state = dpo.DPOStage(beta=0.5, label_smoothing=0.0, reference=reference)
    real = _grad_norm_after_backward(state, dict(batch), policy)
    same = {k: torch.stack([v[:, 0], v[:, 0]], dim=1) for k, v in batch.items()}
    tie = _grad_norm_after_backward(state, same, policy)
    assert real > 1e-3, "a real pair must move the policy"
    assert tie < 1e-6 * real, f"identical answers left a gradient of {tie:g} (a real pair: {real:g})"


@pytest.mark.parametrize("beta", ["0", "-0.5"])
def test_beta_not_above_zero_is_refused_at_compose(compose, beta):
    from nemotron.config.validate import ConfigError, validate

    with pytest.raises(ConfigError) as err:
        validate(compose(["+recipe=gpt/dpo", "tracker=none", f"dpo.beta={beta}"]))
    assert f"dpo.beta={float(beta)}: out of range, must be > 0" in str(err.value)


def test_pipeline_parallel_dpo_is_refused_at_compose(compose):
    from nemotron.config.validate import ConfigError, validate

    overrides = [
        "+recipe=gpt/dpo",
        "tracker=none",
        "checkpoint.pretrained=null",
        "resources.procs_per_node=2",
        "parallel.pipeline_model_parallel_size=2",
    ]
    with pytest.raises(ConfigError) as err:
        validate(compose(overrides))
    assert "parallel.pipeline_model_parallel_size=2: DPO runs without pipeline parallelism" in str(err.value)
    validate(compose([*overrides[:3], "resources.procs_per_node=2", "parallel.tensor_model_parallel_size=2"]))
