"""GRPO's math: group-normalized advantages and the clipped per-token policy loss with a KL term.

For G samples of one prompt with rewards r_1..r_G, the advantage of sample i is
(r_i - mean(r)) / (std(r) + eps) (`scale=False`: r_i - mean(r), Dr. GRPO); every response token of
the sample gets it. Per response token, with ratio = exp(logp - logp_old):
    pg = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)
    kl = exp(logp_ref - logp) - (logp_ref - logp) - 1          (k3, >= 0, as in the GRPO paper)
    loss = pg + beta * kl
summed over the response tokens of the global batch and divided by their number (token-level mean,
Megatron's per-token loss). Also returned, summed the same way: kl, clipped tokens, entropy.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch

STD_EPS = 1e-4
"""Added to a group's std: a group whose rewards are all equal gets advantage 0, not nan."""


def group_advantages(rewards: torch.Tensor, group_size: int, scale: bool = True) -> torch.Tensor:
    """[n * G] rewards, grouped by consecutive G -> [n * G] advantages."""
    grouped = rewards.double().view(-1, group_size)
    centered = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        centered = centered / (grouped.std(dim=1, unbiased=True, keepdim=True) + STD_EPS)
    return centered.view(-1).to(rewards.dtype)


def token_terms(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: Optional[torch.Tensor],
    advantages: torch.Tensor,
    clip_eps: float,
    beta: float,
) -> Dict[str, torch.Tensor]:
    """Per-token loss, kl and clipped flag, each [b, s] (advantages [b] broadcast over tokens)."""
    ratio = torch.exp(logp - old_logp)
    adv = advantages[:, None].to(logp.dtype)
    unclipped, clipped = ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv
    loss = -torch.minimum(unclipped, clipped)
    if ref_logp is not None:
        delta = ref_logp - logp
        kl = torch.exp(delta) - delta - 1
        loss = loss + beta * kl
    else:
        kl = torch.zeros_like(logp)
    was_clipped = (clipped < unclipped).to(logp.dtype)  # the clip changed this token's objective
    return {"loss": loss, "kl": kl.detach(), "clipped": was_clipped.detach(), "ratio": ratio.detach()}


def masked_sums(terms: Dict[str, torch.Tensor], mask: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Sum of each per-token term over the masked (response) tokens."""
    mask = mask.to(terms["loss"].dtype)
    return {name: (value * mask).sum() for name, value in terms.items()}
