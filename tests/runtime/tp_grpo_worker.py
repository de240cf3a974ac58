"""One rank of the TP=2-versus-TP=1 GRPO log-prob check (tests/runtime/test_grpo_tp.py starts it).

    python -m torch.distributed.run --nproc-per-node 2 tests/runtime/tp_grpo_worker.py OUT_DIR

For each model it builds the TP=1 model from the seed on both ranks (DP=2), saves its weights as a
distributed checkpoint, and runs one fixed GRPO micro batch through rl_step: the token log-probs and
entropy from the vocabulary shard, the loss and its gradient norm, and the same from the old
implementation (logits gathered over the full vocabulary, log_softmax), kept here as the reference.
Then it rebuilds the model at TP=2, loads the checkpoint (Megatron reshards it) and runs the batch
again. The tokenizer's vocabulary (300) is padded to 512, so at TP=2 rank 0's shard [0, 256) has no
padding and rank 1's [256, 512) is mostly padding. Each rank writes OUT_DIR/rank<r>.json.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tp_generate_worker  # noqa: E402 - after the path
from tp_generate_worker import VOCAB  # noqa: E402

RL = SimpleNamespace(temperature=0.7, clip_eps=0.2, kl_beta=0.1)
ROWS, SEQ = 4, 16


def gathered_logp(logits: torch.Tensor, labels: torch.Tensor, vocab: int, temperature: float):
    """The old rl_step.token_logp: log_softmax over the gathered full vocabulary, sliced to `vocab`."""
    logits = logits[..., :vocab].float()
    if temperature > 0:
        logits = logits / temperature
    logsm = torch.log_softmax(logits, dim=-1)
    entropy = -(logsm.exp() * logsm).sum(-1)
    return logsm.gather(-1, labels[..., None]).squeeze(-1), entropy


def batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    tokens = torch.randint(1, VOCAB, (ROWS, SEQ), generator=gen)
    mask = torch.ones(ROWS, SEQ)
    mask[:, :4] = 0  # the prompt
    return {
        "tokens": tokens,
        "labels": torch.cat([tokens[:, 1:], torch.full((ROWS, 1), VOCAB - 1)], dim=1),
        "position_ids": torch.arange(SEQ).expand(ROWS, SEQ),
        "loss_mask": mask,
        "advantages": torch.randn(ROWS, generator=gen),
        "noise": 0.3 * torch.randn(2, ROWS, SEQ, generator=gen),
    }


def grad_norm(model) -> float:
    """The L2 norm of the gradient over the whole model, each tensor-parallel duplicate counted once."""
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import param_is_not_tensor_parallel_duplicate

    square = torch.zeros((), dtype=torch.float64)
    for param in model.parameters():
        if param.grad is not None and param_is_not_tensor_parallel_duplicate(param):
            square += param.grad.double().square().sum()
    torch.distributed.all_reduce(square, group=parallel_state.get_tensor_model_parallel_group())
    return float(square.sqrt())


def loss_and_grad(model, data: dict, logp_fn) -> tuple[float, float]:
    from nemotron.runtime.stages.rl import step as rl_step

    model.zero_grad(set_to_none=True)
    real, rl_step.token_logp = rl_step.token_logp, logp_fn
    try:
        loss, _, _ = rl_step.loss_func(data, RL, VOCAB, rl_step.policy_logits(model, data))
    finally:
        rl_step.token_logp = real
    loss.backward()
    return float(loss), grad_norm(model)


def measure(model) -> dict[str, list]:
    from nemotron.runtime.stages.rl import step as rl_step

    data = batch()
    noise = data.pop("noise")
    frozen = rl_step.frozen_logp(model, data, VOCAB, RL.temperature)
    data.update(old_logp=frozen + noise[0], ref_logp=frozen + noise[1])
    with torch.no_grad():
        shard = rl_step.policy_logits(model, data)
        logp, entropy = rl_step.token_logp(shard, data["labels"], VOCAB, RL.temperature)
        full = model(data["tokens"], data["position_ids"], rl_step.causal_mask(SEQ, None), runtime_gather_output=True)
        old_logp, old_entropy = gathered_logp(full, data["labels"], VOCAB, RL.temperature)
    out = {"frozen": frozen, "logp": logp, "entropy": entropy, "gathered_logp": old_logp}
    out = {k: v.tolist() for k, v in {**out, "gathered_entropy": old_entropy}.items()}
    out["width"] = shard.shape[-1]
    out["loss_grad"] = loss_and_grad(model, data, rl_step.token_logp)
    out["gathered_loss_grad"] = loss_and_grad(model, data, gathered_full)
    return out


def gathered_full(shard: torch.Tensor, labels: torch.Tensor, vocab: int, temperature: float):
    """The old token_logp on logits gathered from this rank's shard (what runtime_gather_output did)."""
    from megatron.core.tensor_parallel import gather_from_tensor_model_parallel_region

    return gathered_logp(gather_from_tensor_model_parallel_region(shard), labels, vocab, temperature)


if __name__ == "__main__":
    tp_generate_worker.main(sys.argv[1], measure)
