"""One GRPO step of the shared loop: rollouts, reference log-probs, clipped updates, metrics.

`train_step(run, stage)` is `RLStage.train_step` (see nemotron/runtime/stages/rl/stage.py).
The forward-backward over the rollout micro-batches is Megatron's schedule
(`get_forward_backward_func`) with per-token loss; metrics are reduced over all ranks (tensor-
parallel copies scale every sum alike, so the ratios are exact) and returned in the step's `StepRecord`.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
import torch.distributed as dist

from nemotron.runtime import cpu_compat
from nemotron.runtime.model.generate import causal_mask
from nemotron.runtime.stages.rl import grpo
from nemotron.runtime.stages.rl import metrics as rl_metrics
from nemotron.runtime.stages.rl import rollout as rl_rollout
from nemotron.runtime.train.records import StepRecord

_SUMS = ("loss", "tokens", "kl", "clipped", "entropy")
"""What each micro-batch's loss function reports, summed over response tokens."""


def _device() -> Optional[torch.device]:
    return None if cpu_compat.on_cpu() else torch.device("cuda", torch.cuda.current_device())


def _to(batch: Dict[str, torch.Tensor], device: Optional[torch.device]) -> Dict[str, torch.Tensor]:
    return batch if device is None else {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _shard(logits: torch.Tensor, vocab: int, temperature: float) -> torch.Tensor:
    """This rank's vocabulary shard in fp32 at the sampling temperature, a new tensor; the padded
    rows beyond the tokenizer's `vocab` (rank r holds [r V/tp, (r+1) V/tp)) at fp32's lowest value."""
    from megatron.core import parallel_state

    scaled = logits.float() / (temperature if temperature > 0 else 1.0)
    width = scaled.shape[-1]
    start = parallel_state.get_tensor_model_parallel_rank() * width
    if start + width > vocab:
        padded = torch.arange(start, start + width, device=scaled.device) >= vocab
        scaled.masked_fill_(padded, torch.finfo(torch.float32).min)
    return scaled


def _tp_all_reduce(values: torch.Tensor, op: Any) -> torch.Tensor:
    from megatron.core import parallel_state

    if parallel_state.get_tensor_model_parallel_world_size() > 1:
        dist.all_reduce(values, op=op, group=parallel_state.get_tensor_model_parallel_group())
    return values


@torch.no_grad()
def _entropy(shard: torch.Tensor) -> torch.Tensor:
    """Entropy of the softmax over the vocabulary split across TP ranks, log Z - sum(e log e) / Z with
    e = exp(z - m) for the global max m and Z = sum(e), from three all-reduced numbers per position;
    one temporary the size of the shard."""
    peak = _tp_all_reduce(shard.max(dim=-1).values, dist.ReduceOp.MAX)
    exp = (shard - peak[..., None]).exp_()
    total = _tp_all_reduce(exp.sum(dim=-1), dist.ReduceOp.SUM)
    weighted = _tp_all_reduce(exp.xlogy_(exp).sum(dim=-1), dist.ReduceOp.SUM)  # xlogy(0, 0) = 0
    return total.log() - weighted / total


def token_logp(
    logits: torch.Tensor, labels: torch.Tensor, vocab: int, temperature: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(log-prob of each label, entropy) per position [b, s], over the tokenizer's vocabulary at
    the sampling temperature (the distribution the samples were drawn from, before top-p).

    `logits` is this rank's vocabulary shard [b, s, V/tp]; Megatron's vocab-parallel cross entropy
    gives the log-probs (and their gradient) and the detached entropy is all-reduced over TP, so no
    rank holds the full vocabulary."""
    from megatron.core.tensor_parallel import vocab_parallel_cross_entropy

    shard = _shard(logits, vocab, temperature)
    entropy = _entropy(shard)
    return -vocab_parallel_cross_entropy(shard, labels), entropy  # overwrites `shard` in place


def policy_logits(model: Any, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    """This rank's vocabulary shard of the logits, [b, s, V/tp]."""
    tokens = batch["tokens"]
    return model(tokens, batch["position_ids"], causal_mask(tokens.shape[1], tokens.device))


@torch.no_grad()
def frozen_logp(model: Any, batch: Dict[str, torch.Tensor], vocab: int, temperature: float) -> torch.Tensor:
    """Log-probs of the labels under `model` without gradients (reference, or the old policy)."""
    return token_logp(policy_logits(model, batch), batch["labels"], vocab, temperature)[0]


def loss_func(batch: Dict[str, torch.Tensor], rl: Any, vocab: int, output: torch.Tensor):
    logp, entropy = token_logp(output, batch["labels"], vocab, float(rl.temperature))
    old = batch.get("old_logp")
    terms = grpo.token_terms(
        logp,
        logp.detach() if old is None else old,
        batch.get("ref_logp"),
        batch["advantages"],
        float(rl.clip_eps),
        float(rl.kl_beta),
    )
    terms["entropy"] = entropy.detach()
    sums = grpo.masked_sums(terms, batch["loss_mask"])
    n = batch["loss_mask"].sum()
    report = torch.stack([sums["loss"].detach(), n, sums["kl"], sums["clipped"], sums["entropy"]])
    return sums["loss"], n.to(torch.int), {"rl": report}


def _forward_step(rl: Any, vocab: int, data_iterator: Iterator, model: Any):
    batch = _to(next(data_iterator), _device())
    return policy_logits(model, batch), partial(loss_func, batch, rl, vocab)


def _schedule(run: Any, batches: List[Dict[str, torch.Tensor]], vocab: int) -> torch.Tensor:
    """Forward-backward over the rollout micro-batches; the _SUMS of this rank's last stage."""
    from megatron.core.pipeline_parallel import get_forward_backward_func

    width = max(b["tokens"].shape[1] for b in batches)
    out = get_forward_backward_func()(
        forward_step_func=partial(_forward_step, run.cfg.rl, vocab),
        data_iterator=iter(batches),
        model=run.model,
        num_microbatches=len(batches),
        seq_length=width,
        micro_batch_size=batches[0]["tokens"].shape[0],
        forward_only=False,
    )
    total = torch.zeros(len(_SUMS), dtype=torch.float64)
    for item in out:
        total += item["rl"].detach().double().cpu()
    return total


def _update(run: Any, batches: List[Dict[str, torch.Tensor]], vocab: int) -> Tuple[torch.Tensor, float]:
    run.model.zero_grad_buffer()
    run.optimizer.zero_grad()
    sums = _schedule(run, batches, vocab)
    with cpu_compat.cuda_as_cpu():
        _, grad_norm, _ = run.optimizer.step()
    return sums, float(grad_norm) if grad_norm is not None else float("nan")


def _all_reduce(values: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        values = values.cuda() if torch.cuda.is_available() else values
        dist.all_reduce(values)
    return values.cpu()


def _prompts(run: Any, stage: Any) -> List[Any]:
    prompts = stage.prompts.prompts
    return [prompts[int(i)] for _ in range(run.num_microbatches) for i in next(run.train_iter)["index"]]


def generation_seed(seed: int, step: int, dp_rank: int) -> int:
    """The sampler's seed for `step` on data-parallel rank `dp_rank` (resume draws the same)."""
    return (int(seed) * 1_000_003 + step * 7_919 + dp_rank * 104_729) % (2**63)


def rollouts(run: Any, stage: Any) -> rl_rollout.Rollouts:
    """This step's samples: `rl.group_size` responses to each of this rank's prompts, scored."""
    from megatron.core import parallel_state

    seed = generation_seed(run.cfg.train.seed, run.position.step + 1, parallel_state.get_data_parallel_rank())
    return rl_rollout.rollout(run.model, _prompts(run, stage), run.cfg, stage.tokenizer, stage.rewards, seed, _device())


def _batches(run: Any, stage: Any, roll: rl_rollout.Rollouts, vocab: int) -> List[Dict[str, torch.Tensor]]:
    rl, tokenizer = run.cfg.rl, stage.tokenizer
    rows = int(run.cfg.train.micro_batch_size) * int(rl.group_size)
    batches = rl_rollout.training_batches(roll, rows, tokenizer.eod)
    for batch in batches:
        if stage.reference is not None:
            batch["ref_logp"] = frozen_logp(stage.reference, _to(batch, _device()), vocab, float(rl.temperature)).cpu()
        if rl.updates_per_batch > 1:  # later updates are off-policy: keep the sampling policy's
            batch["old_logp"] = frozen_logp(run.model, _to(batch, _device()), vocab, float(rl.temperature)).cpu()
    return batches


def train_step(run: Any, stage: Any) -> StepRecord:
    """One rollout batch and `rl.updates_per_batch` optimizer steps (the record's grad norm: the last)."""
    vocab = stage.tokenizer.vocab_size
    roll = rollouts(run, stage)
    start = time.perf_counter()
    batches = _batches(run, stage, roll, vocab)
    run.scheduler.step(increment=1)  # one learning rate per rollout batch
    lr = run.optimizer.param_groups[0]["lr"]
    sums, grad_norm = torch.zeros(len(_SUMS), dtype=torch.float64), float("nan")
    for _ in range(int(run.cfg.rl.updates_per_batch)):
        done, grad_norm = _update(run, batches, vocab)
        sums += done
    train_s = time.perf_counter() - start
    tokens = sum(int(b["tokens"].numel()) for b in batches) * int(run.cfg.rl.updates_per_batch)
    extra = rl_metrics.step_metrics(run, stage.tokenizer.eod, roll, sums, tokens, train_s, _all_reduce)
    loss, trained = extra.pop("loss_mean"), extra.pop("tokens")
    return StepRecord(loss=loss, lr=lr, grad_norm=grad_norm, tokens=trained, extra=extra)
