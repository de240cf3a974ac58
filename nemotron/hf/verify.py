"""Logit comparison of our model and transformers' on fixed prompts (fp32, CPU).

`PROMPTS` are token ids drawn from a fixed seed (the same in every run, any vocabulary);
`compare(megatron, hf_dir)` runs both models on them and returns the record an export's manifest
keeps: largest absolute logit difference, the tolerance, and whether it passed.
"""

from __future__ import annotations

from typing import Any, Dict

import torch

from nemotron.hf import megatron_side as ours
from nemotron.runtime import transformers_compat

TOLERANCE = 1e-4
"""Largest absolute logit difference accepted (fp32)."""
NUM_PROMPTS, PROMPT_LENGTH, SEED = 3, 24, 20260601


def prompts(vocab_size: int) -> torch.Tensor:
    """[NUM_PROMPTS, PROMPT_LENGTH] fixed token ids below `vocab_size`."""
    gen = torch.Generator().manual_seed(SEED)
    return torch.randint(0, vocab_size, (NUM_PROMPTS, PROMPT_LENGTH), generator=gen)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    vocab = min(a.shape[-1], b.shape[-1])
    return float((a[..., :vocab] - b[..., :vocab]).abs().max())


def compare(megatron: Any, hf_dir: str, vocab_size: int) -> Dict[str, Any]:
    """Our logits vs transformers' on `prompts(vocab_size)`; the manifest record."""
    tokens = prompts(vocab_size)
    theirs = transformers_compat.causal_lm_logits(transformers_compat.load_causal_lm(hf_dir), tokens)
    diff = max_abs_diff(ours.logits(megatron, tokens), theirs)
    return {
        "max_abs_logit_diff": diff,
        "tolerance": TOLERANCE,
        "passed": diff <= TOLERANCE,
        "prompts": NUM_PROMPTS,
        "prompt_length": PROMPT_LENGTH,
        "seed": SEED,
        "dtype": "float32",
    }
