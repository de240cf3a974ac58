"""Direct Preference Optimization: the pretraining loop (`pretrain.run`) with preference pairs and a
frozen reference model.

What differs from SFT, as one `pretrain.Stage` (`dpo_stage`):
- data: (chosen, rejected) pairs rendered with the SFT chat template (nemotron/runtime/dpo_data.py);
  a micro-batch of `train.micro_batch_size` pairs is one forward of 2 x that many rows;
- loss: sigmoid DPO (`dpo_loss`) on each side's answer log-probability (the masked sum of its token
  log-probs) under the policy and the reference; `dpo.beta`, `dpo.label_smoothing` (cDPO). In
  Megatron's per-token mode the "tokens" are pairs: the global batch's mean pair loss;
- reference: built like the policy and loaded from `checkpoint.pretrained` on every start, fresh or
  resumed (with `checkpoint.pretrained=null`, rebuilt from `train.seed`: the policy's own initial
  weights); frozen, evaluated under `torch.no_grad` in the same micro-batch as the policy;
- metrics per step, over the global batch (TRL's names): `rewards/chosen`, `rewards/rejected`
  (beta x (log pi - log ref) of each answer), `rewards/margins` (their difference) and
  `rewards/accuracies` (the share of pairs whose chosen reward is the larger).
Weights on a fresh start, checkpoints (policy, optimizer, RNG, data position), resume, validation
(the DPO loss of the validation pairs), tracking and preemption are SFT's and the loop's own.
Pipeline parallelism is refused (the reference would need its own pipeline schedule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch
import torch.nn.functional as F

from nemotron.common.checkpoint_index import pretrained_checkpoint
from nemotron.runtime import checkpoint, dpo_data, pretrain, sft

STATS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")
"""The metrics each step logs, in the order `_State.sums` holds them (then the pair count)."""


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    label_smoothing: float = 0.0,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, chosen reward, rejected reward) per pair from answer log-probabilities [pairs].

    z = beta ((pi_c - ref_c) - (pi_r - ref_r)); loss = -(1 - eps) log sigmoid(z) - eps log sigmoid(-z).
    """
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    z = chosen - rejected
    loss = -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    return loss, chosen.detach(), rejected.detach()


def answer_logps(token_losses: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """[rows] log-probability of each row's answer from Megatron's per-token cross entropy [rows, s]."""
    return -(token_losses.float() * loss_mask.float()).sum(-1)


@dataclass
class _State:
    """What the DPO stage keeps between hooks of one run."""

    beta: float
    label_smoothing: float
    vocab_size: int = 0
    reference: Any = None
    sums: torch.Tensor = field(default_factory=lambda: torch.zeros(len(STATS) + 1, dtype=torch.float64))
    """Per-step sums of the STATS over the pairs trained on this rank, then the pair count."""


def _flatten_pairs(batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """[pairs, 2, ...] -> [2 x pairs, ...]: rows chosen, rejected, chosen, ..."""
    return {k: v.flatten(0, 1) for k, v in batch.items()}


def loss_func(
    state: _State, loss_mask: torch.Tensor, ref_losses: torch.Tensor, training: bool, output_tensor: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, dict]:
    """Summed pair losses, pair count, and the pair for reporting (Megatron's 3-tuple form)."""
    policy = answer_logps(output_tensor, loss_mask).view(-1, 2)
    ref = answer_logps(ref_losses, loss_mask).view(-1, 2)
    losses, chosen, rejected = dpo_loss(
        policy[:, 0], policy[:, 1], ref[:, 0], ref[:, 1], state.beta, state.label_smoothing
    )
    loss, pairs = losses.sum(), torch.tensor(losses.numel(), dtype=torch.int, device=losses.device)
    if training:
        state.sums += (
            torch.stack(
                [
                    chosen.sum(),
                    rejected.sum(),
                    (chosen > rejected).float().sum(),
                    (chosen - rejected).sum(),
                    pairs.float(),
                ]
            )
            .double()
            .cpu()
        )
    return loss, pairs, {"lm loss": torch.stack([loss.detach(), pairs.float()])}


def forward_step(state: _State, data_iterator: Iterator, model: Any) -> Tuple[torch.Tensor, Callable]:
    """One micro-batch of pairs: policy and (no grad) reference forwards of the same rows."""
    from nemotron.runtime.mamba2 import packed_samples

    batch = _flatten_pairs(next(data_iterator))
    segments = batch.pop("segment_ids")
    if torch.cuda.is_available():
        batch = {k: v.cuda(non_blocking=True) for k, v in batch.items()}
        segments = segments.cuda(non_blocking=True)
    args = (batch["tokens"], batch["position_ids"], batch.get("attention_mask"))
    with packed_samples(segments):  # padding is a segment of its own for Mamba-2 layers
        with torch.no_grad():
            ref_losses = state.reference(*args, labels=batch["labels"])
        output = model(*args, labels=batch["labels"])
    return output, partial(loss_func, state, batch["loss_mask"], ref_losses, model.training)


def step_metrics(state: _State) -> Dict[str, float]:
    """The STATS of the step just trained, over every rank's pairs; resets the sums."""
    import torch.distributed as dist

    total = state.sums.clone()
    state.sums.zero_()
    if torch.cuda.is_available():
        total = total.cuda()
    if dist.is_initialized():
        dist.all_reduce(total)  # TP/CP copies scale the sums and the count alike
    pairs = float(total[-1].clamp(min=1))
    return {name: float(total[i]) / pairs for i, name in enumerate(STATS)}


def train_step(state: _State, run: Any) -> Tuple[float, float, float]:
    """The pretraining optimizer step on pairs; the step's STATS go to `run.metrics`."""
    loss, lr, grad_norm = pretrain.train_step(run)
    run.metrics = step_metrics(state)
    return loss, lr, grad_norm


def build_reference(cfg: Any, vocab_size: int) -> Any:
    """The frozen reference: the policy's architecture with `checkpoint.pretrained`'s weights, or
    (null) the policy's initial weights, rebuilt from `train.seed`."""
    from nemotron.runtime.model import build_model

    pretrain._set_seed(cfg.train.seed)
    reference, _ = build_model(cfg, vocab_size)
    value = cfg.checkpoint.get("pretrained")
    if value is not None:
        found = pretrained_checkpoint(str(value), str(cfg.paths.output_root))
        checkpoint.load_weights(found, cfg, reference, say=False)
        pretrain._say(sft._rank(), f"reference model: {found.path} (step {found.step}), frozen")
    else:
        pretrain._say(sft._rank(), "reference model: the policy's initial weights (train.seed), frozen")
    reference.eval()
    for param in reference.parameters():
        param.requires_grad_(False)
    return reference


def _configure(state: _State, cfg: Any, config: Any) -> None:
    if cfg.parallel.pipeline_model_parallel_size > 1:
        raise ValueError(
            f"DPO with parallel.pipeline_model_parallel_size="
            f"{cfg.parallel.pipeline_model_parallel_size} is not supported; use 1"
        )
    sft._configure(cfg, config)  # per-token (here: per-pair) loss; packed-sample guards
    state.reference = build_reference(cfg, state.vocab_size)


def _init_weights(cfg: Any, model: Any) -> None:
    if cfg.checkpoint.get("pretrained") is None:
        pretrain._say(sft._rank(), "checkpoint.pretrained=null: DPO starts from random weights")
        return
    sft._init_weights(cfg, model)


def _datasets(state: _State, cfg: Any, attention_mask: bool) -> Tuple[Any, Any, Optional[Any]]:
    tokenizer, train, valid = dpo_data.build_dpo_datasets(cfg, attention_mask=True)
    state.vocab_size = tokenizer.vocab_size
    return tokenizer, train, valid


def dpo_stage(cfg: Any) -> pretrain.Stage:
    """The DPO stage of the shared loop for `cfg` (its own reference model and metric sums)."""
    state = _State(beta=float(cfg.dpo.beta), label_smoothing=float(cfg.dpo.label_smoothing))
    return pretrain.Stage(
        "dpo",
        datasets=partial(_datasets, state),
        forward_step=partial(forward_step, state),
        configure=partial(_configure, state),
        init_weights=_init_weights,
        train_step=partial(train_step, state),
        shown=STATS,
    )


def run(cfg: Any) -> pretrain.TrainResult:
    """Train `cfg.train.steps` DPO steps; see `pretrain.run` for resume, summary and tracking."""
    cfg = sft.with_inputs_resolved(cfg, dpo_data.tiny_manifest_path)
    return pretrain.run(cfg, dpo_stage(cfg))
