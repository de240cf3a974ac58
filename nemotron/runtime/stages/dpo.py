"""Direct Preference Optimization: the shared loop (`nemotron.runtime.train.loop`) with preference pairs and a
frozen reference model.

What differs from SFT, as one `Stage` (`DPOStage`):
- data: (chosen, rejected) pairs rendered with the SFT chat template (nemotron/runtime/data/dpo.py);
  a micro-batch of `train.micro_batch_size` pairs is one forward of 2 x that many rows;
- loss: sigmoid DPO (`dpo_loss`) on each side's answer log-probability (the masked sum of its token
  log-probs) under the policy and the reference; `dpo.beta`, `dpo.label_smoothing` (cDPO). In
  Megatron's per-token mode the "tokens" are pairs: the global batch's mean pair loss;
- reference: built like the policy and loaded from `checkpoint.pretrained` on every start, fresh or
  resumed (with `checkpoint.pretrained=null`, rebuilt from `train.seed`: the policy's own initial
  weights); frozen, evaluated under `torch.no_grad` in the same micro-batch as the policy, or with
  `dpo.precompute_reference` once over every train and validation pair before the first step
  (`reference_logps`), after which it is freed and the pairs carry their reference log-probs;
- metrics per step, over the global batch (TRL's names): `rewards/chosen`, `rewards/rejected`
  (beta x (log pi - log ref) of each answer), `rewards/margins` (their difference) and
  `rewards/accuracies` (the share of pairs whose chosen reward is the larger).
Weights on a fresh start, checkpoints (policy, optimizer, RNG, data position), resume, validation
(the DPO loss of the validation pairs), tracking and preemption are SFT's and the loop's own.
Pipeline parallelism is refused (the reference would need its own pipeline schedule).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from nemotron.runtime.data import dpo as dpo_data
from nemotron.runtime.stages.pretrained import load_pretrained, pretrained_source
from nemotron.runtime.stages.reference import build_frozen_reference
from nemotron.runtime.stages.sft import configure_packed, packed_forward, packed_layout, with_inputs_resolved
from nemotron.runtime.train import loop, step
from nemotron.runtime.train.contract import Stage, StepRecord, TrainResult
from nemotron.runtime.train.progress import say

STATS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")
"""The metrics each step logs, in the order `DPOStage.sums` holds them (then the pair count)."""


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


def flatten_pairs(batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """[pairs, 2, ...] -> [2 x pairs, ...]: rows chosen, rejected, chosen, ..."""
    return {k: v.flatten(0, 1) for k, v in batch.items()}


def reference_logps(reference: Any, dataset: Any, micro_batch_size: int, layout: str) -> np.ndarray:
    """[pairs, 2] float32 answer log-probabilities of every pair of `dataset` (by index) under the
    frozen `reference`, computed in micro-batches of `micro_batch_size` pairs; data-parallel ranks
    each take a contiguous share and exchange the results (TP ranks of a group compute the same)."""
    import torch.distributed as dist
    from megatron.core import parallel_state

    n = len(dataset)
    dp = parallel_state.get_data_parallel_world_size() if dist.is_initialized() else 1
    rank = parallel_state.get_data_parallel_rank() if dp > 1 else 0
    share = -(-n // dp)
    first, end = rank * share, min(n, (rank + 1) * share)
    mine = torch.zeros(share, 2, dtype=torch.float32)
    for start in range(first, end, micro_batch_size):
        stop = min(end, start + micro_batch_size)
        batch = flatten_pairs(torch.utils.data.default_collate([dataset[i] for i in range(start, stop)]))
        with torch.no_grad():
            batch, losses = packed_forward(batch, reference, layout)
        mine[start - first : stop - first] = answer_logps(losses, batch["loss_mask"]).view(-1, 2).cpu()
    if dp == 1:
        return mine[:n].numpy()
    mine = mine.cuda() if torch.cuda.is_available() else mine
    parts = [torch.zeros_like(mine) for _ in range(dp)]
    dist.all_gather(parts, mine, group=parallel_state.get_data_parallel_group())
    return torch.cat(parts)[:n].cpu().numpy()


class DPOStage(Stage):
    """The DPO stage of the shared loop: its frozen reference and the step's metric sums."""

    name = "dpo"
    shown = STATS
    layout = "sbhd"
    """How packed rows reach the model (sft.packed_layout), set by `configure`."""

    def __init__(self, beta: float, label_smoothing: float = 0.0, reference: Any = None) -> None:
        self.beta = beta
        self.label_smoothing = label_smoothing
        self.reference = reference
        """The frozen reference model (built in `configure`)."""
        self.vocab_size = 0
        self.valid: Optional[Any] = None
        """The validation pairs (`datasets`), whose reference log-probs `prepare` may precompute."""
        self.sums = torch.zeros(len(STATS) + 1, dtype=torch.float64)
        """Per-step sums of the STATS over the pairs trained on this rank, then the pair count."""

    @classmethod
    def from_config(cls, cfg: Any) -> "DPOStage":
        return cls(beta=float(cfg.dpo.beta), label_smoothing=float(cfg.dpo.label_smoothing))

    def resolve_inputs(self, cfg: Any) -> Any:
        return with_inputs_resolved(cfg, dpo_data.tiny_manifest_path)

    def datasets(self, cfg: Any, attention_mask: bool) -> Tuple[Any, Any, Optional[Any]]:
        tokenizer, train, valid = dpo_data.build_dpo_datasets(cfg, attention_mask=packed_layout(cfg) == "sbhd")
        self.vocab_size = tokenizer.vocab_size
        self.valid = valid
        return tokenizer, train, valid

    def prepare(self, cfg: Any, train_dataset: Any) -> None:
        """With `dpo.precompute_reference`: the reference's log-probs of every pair, then no reference."""
        if not cfg.dpo.get("precompute_reference", False):
            return
        started = time.perf_counter()
        for dataset in (train_dataset, self.valid):
            if dataset is not None:
                dataset.reference_logps = reference_logps(
                    self.reference, dataset, int(cfg.train.micro_batch_size), self.layout
                )
        pairs = len(train_dataset) + (len(self.valid) if self.valid is not None else 0)
        self.reference = None  # its weights are not needed again
        say(
            f"reference log-probs of {pairs} pairs precomputed in {time.perf_counter() - started:.1f} s; "
            "reference model freed"
        )

    def configure(self, cfg: Any, config: Any) -> None:
        if cfg.parallel.pipeline_model_parallel_size > 1:
            raise ValueError(
                f"DPO with parallel.pipeline_model_parallel_size="
                f"{cfg.parallel.pipeline_model_parallel_size} is not supported; use 1"
            )
        configure_packed(cfg, config)  # per-token (here: per-pair) loss
        self.layout = packed_layout(cfg)
        self.reference = build_frozen_reference(cfg, self.vocab_size, pretrained_source(cfg))

    def init_weights(self, cfg: Any, model: Any) -> None:
        load_pretrained(cfg, model, pretrained_source(cfg), "DPO")

    def loss_func(
        self, loss_mask: torch.Tensor, ref_logps: torch.Tensor, training: bool, output_tensor: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, dict]:
        """Summed pair losses, pair count, and the pair for reporting (Megatron's 3-tuple form)."""
        policy = answer_logps(output_tensor, loss_mask).view(-1, 2)
        ref = ref_logps.to(policy.device).view(-1, 2)
        losses, chosen, rejected = dpo_loss(
            policy[:, 0], policy[:, 1], ref[:, 0], ref[:, 1], self.beta, self.label_smoothing
        )
        loss, pairs = losses.sum(), torch.tensor(losses.numel(), dtype=torch.int, device=losses.device)
        if training:
            stats = [chosen.sum(), rejected.sum(), (chosen > rejected).float().sum(), (chosen - rejected).sum()]
            self.sums += torch.stack([*stats, pairs.float()]).double().cpu()
        return loss, pairs, {"lm loss": torch.stack([loss.detach(), pairs.float()])}

    def forward_step(self, data_iterator: Iterator, model: Any) -> Tuple[torch.Tensor, Callable]:
        """One micro-batch of pairs: policy and (no grad) reference forwards of the same rows."""
        batch = flatten_pairs(next(data_iterator))
        ref_logps = batch.pop("ref_logps", None)  # precomputed (dpo.precompute_reference)
        if ref_logps is None:
            segments = batch["segment_ids"]
            with torch.no_grad():  # padding is a segment of its own for Mamba-2 layers
                ref_batch, ref_losses = packed_forward(dict(batch), self.reference, self.layout)
            ref_logps = answer_logps(ref_losses, ref_batch["loss_mask"])
            batch["segment_ids"] = segments
        batch, output = packed_forward(batch, model, self.layout)
        return output, partial(self.loss_func, batch["loss_mask"], ref_logps, model.training)

    def step_metrics(self) -> Dict[str, float]:
        """The STATS of the step just trained, over every rank's pairs; resets the sums."""
        import torch.distributed as dist

        total = self.sums.clone()
        self.sums.zero_()
        if torch.cuda.is_available():
            total = total.cuda()
        if dist.is_initialized():
            dist.all_reduce(total)  # TP/CP copies scale the sums and the count alike
        pairs = float(total[-1].clamp(min=1))
        return {name: float(total[i]) / pairs for i, name in enumerate(STATS)}

    def train_step(self, run: Any) -> StepRecord:
        """The pretraining optimizer step on pairs, with the step's STATS."""
        record = step.train_step(run)
        record.extra = self.step_metrics()
        return record


def run(cfg: Any) -> TrainResult:
    """Train `cfg.train.steps` DPO steps; see `nemotron.runtime.train.loop.run`."""
    return loop.run(cfg, DPOStage.from_config(cfg))
