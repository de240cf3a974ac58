"""Per-step GRPO metrics, reduced over all ranks, and the RL progress line.

Logged every step (through the run's tracker, beside the loop's loss, lr and grad norm):
reward_mean, reward_std, reward/<name> (each configured reward's mean), kl, clip_fraction,
entropy (token means over response tokens, all updates of the step), response_length,
stopped_fraction (samples that ended at the end-of-turn token), generation_tokens_per_s (new tokens
sampled) and training_tokens_per_s (tokens through forward-backward), apart.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict

import torch


def _short(name: str) -> str:
    return name.rpartition(".")[2]


def step_metrics(
    run: Any,
    eos: int,
    roll: Any,
    sums: torch.Tensor,
    train_tokens: int,
    train_s: float,
    reduce: Callable[[torch.Tensor], torch.Tensor],
) -> Dict[str, float]:
    """The step's metrics over all ranks; `sums` = (loss, tokens, kl, clipped, entropy); `eos` ends a
    response that stopped by itself."""
    r = roll.rewards.double()
    lengths = torch.tensor([len(x) for x in roll.responses], dtype=torch.float64)
    stopped = sum(1 for x in roll.responses if x and x[-1] == eos)
    names = list(roll.by_reward)
    local = torch.tensor(
        [
            float(r.sum()),
            float((r * r).sum()),
            float(r.numel()),
            float(lengths.sum()),
            float(stopped),
            float(roll.generated_tokens),
            roll.generation_s,
            float(train_tokens),
            train_s,
            *[roll.by_reward[n] for n in names],
        ],
        dtype=torch.float64,
    )
    g = reduce(torch.cat([local, sums.double()]))
    ranks = float(run.info.world_size)
    mp = ranks / run.info.data_parallel_size  # ranks holding a copy of each sample (TP)
    n = g[2]
    mean = float(g[0] / n)
    out = {
        "reward_mean": mean,
        "reward_std": math.sqrt(max(0.0, float(g[1] / n) - mean * mean)),
        "response_length": float(g[3] / n),
        "stopped_fraction": float(g[4] / n),
        "generation_tokens_per_s": float(g[5] / mp) / max(1e-9, float(g[6] / ranks)),
        "training_tokens_per_s": float(g[7] / mp) / max(1e-9, float(g[8] / ranks)),
        "tokens": int(g[7] / mp),
    }
    out.update({f"reward/{_short(name)}": float(g[9 + i] / n) for i, name in enumerate(names)})
    s = g[9 + len(names) :]
    tokens = max(1.0, float(s[1]))
    out.update(
        {
            "loss_mean": float(s[0]) / tokens,
            "kl": float(s[2]) / tokens,
            "clip_fraction": float(s[3]) / tokens,
            "entropy": float(s[4]) / tokens,
        }
    )
    return out


def progress_line(m: Dict[str, float], step: int, steps: int) -> str:
    """`rl step k/N | reward ...`, from the step's metrics (the loop prints its loss line after it)."""
    return (
        f"rl step {step}/{steps} | reward {m['reward_mean']:.3f} ± {m['reward_std']:.3f} | "
        f"kl {m['kl']:.4f} | clip {m['clip_fraction']:.3f} | entropy {m['entropy']:.3f} | "
        f"length {m['response_length']:.1f} | generation {m['generation_tokens_per_s']:,.0f} "
        f"tokens/s | training {m['training_tokens_per_s']:,.0f} tokens/s"
    )
