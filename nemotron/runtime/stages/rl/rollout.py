"""One GRPO rollout batch: sample G responses per prompt, score them, and lay them out for training.

`rollout(...)` samples with the policy (`generate`), decodes each response up to its end of turn,
scores it with the configured rewards and computes group-normalized advantages. `training_batches`
turns the samples into micro-batches of `prompts x G` rows: tokens = prompt + response, each
predicting the next (labels), a mask on the response positions, the sample's advantage, right
padding with the end-of-turn token (causal attention: padding never reaches earlier positions).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import torch

from nemotron.runtime import rewards
from nemotron.runtime.model.generate import Generated, SamplingSettings, generate
from nemotron.runtime.stages.rl import grpo


@dataclass
class Rollouts:
    """The samples of one rollout batch on this rank, prompt-major (G consecutive per prompt)."""

    prompt_ids: List[List[int]]
    responses: List[List[int]]
    rewards: torch.Tensor
    """[n * G] total rewards."""
    advantages: torch.Tensor
    """[n * G] group-normalized advantages."""
    by_reward: Dict[str, float]
    """Sum of each configured reward over the samples (for its mean across ranks)."""
    generation_s: float
    generated_tokens: int


def sampling_settings(cfg: Any, tokenizer: Any, seed: int) -> SamplingSettings:
    """The sampler settings `cfg.rl` asks for, seeded with `seed`."""
    rl = cfg.rl
    return SamplingSettings(
        max_new_tokens=int(rl.max_new_tokens),
        eos=tokenizer.eod,
        vocab_size=tokenizer.vocab_size,
        temperature=float(rl.temperature),
        top_p=float(rl.top_p),
        seed=seed,
    )


def _score_all(
    loaded: Sequence[rewards.Reward], prompts: Sequence[Any], texts: Sequence[str], group: int
) -> List[Dict[str, float]]:
    return [
        rewards.score(loaded, prompts[k // group].question, text, prompts[k // group].answer, prompts[k // group].index)
        for k, text in enumerate(texts)
    ]


def rollout(
    model: Any, prompts: Sequence[Any], cfg: Any, tokenizer: Any, loaded: Sequence[Any], seed: int, device: Any = None
) -> Rollouts:
    """Sample `rl.group_size` responses for each of `prompts` (rl_data.Prompt) and score them."""
    group = int(cfg.rl.group_size)
    expanded = [p.ids for p in prompts for _ in range(group)]
    start = time.perf_counter()
    out: Generated = generate(model, expanded, sampling_settings(cfg, tokenizer, seed), device)
    generation_s = time.perf_counter() - start
    texts = [tokenizer.detokenize([t for t in r if t != tokenizer.eod]) for r in out.responses]
    scores = _score_all(loaded, prompts, texts, group)
    totals = torch.tensor([s["total"] for s in scores], dtype=torch.float64)
    by_reward = {r.name: sum(s[r.name] for s in scores) for r in loaded}
    advantages = grpo.group_advantages(totals, group, bool(cfg.rl.scale_rewards))
    return Rollouts(expanded, out.responses, totals, advantages, by_reward, generation_s, out.num_tokens())


def _row(prompt: List[int], response: List[int]) -> tuple:
    ids = prompt + response
    mask = [0.0] * (len(prompt) - 1) + [1.0] * len(response)
    return ids[:-1], ids[1:], mask


def training_batches(r: Rollouts, rows_per_batch: int, pad: int) -> List[Dict[str, torch.Tensor]]:
    """Micro-batches of `rows_per_batch` samples (see the module docstring)."""
    batches = []
    for start in range(0, len(r.responses), rows_per_batch):
        rows = [
            _row(r.prompt_ids[k], r.responses[k]) for k in range(start, min(start + rows_per_batch, len(r.responses)))
        ]
        width = max(len(tokens) for tokens, _, _ in rows)

        def padded(values: list, fill: Any, dtype: torch.dtype, width: int = width) -> torch.Tensor:
            return torch.tensor([v + [fill] * (width - len(v)) for v in values], dtype=dtype)

        batches.append(
            {
                "tokens": padded([t for t, _, _ in rows], pad, torch.long),
                "labels": padded([lab for _, lab, _ in rows], pad, torch.long),
                "loss_mask": padded([m for _, _, m in rows], 0.0, torch.float32),
                "position_ids": torch.arange(width).expand(len(rows), width).contiguous(),
                "advantages": r.advantages[start : start + len(rows)].float(),
            }
        )
    return batches
