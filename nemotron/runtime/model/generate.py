"""Batched sampling from a Megatron-Core GPT or hybrid model, with a KV cache (and Mamba state).

`generate(model, prompts, settings)` samples continuations of token-id prompts: temperature
(0 is greedy), top-p, at most `max_new_tokens`, each sample stopping at `eos` (end of turn). Prompts
of equal length share a batch (no padding, so no mask is needed and RoPE positions are exact);
with `use_cache` the prompt is run once (prefill) and each new token is one forward of one
position through Megatron's static inference context: attention layers keep keys and values there,
Mamba-2 layers their conv window and SSM state (`mamba2_cache`). Without it every token re-runs the
whole sequence (the baseline the cache is tested and benchmarked against). Sampling draws from a
`torch.Generator` seeded by `settings.seed`, so a seed gives the same samples. Logits beyond the
tokenizer's vocabulary (Megatron pads it) are never sampled.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import torch

from nemotron.runtime.model import inference_compat


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample (rl.temperature, rl.top_p, rl.max_new_tokens)."""

    max_new_tokens: int
    eos: int
    vocab_size: int
    """Tokenizer vocabulary: logits past it (Megatron's padding) are never sampled."""
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    use_cache: bool = True


def next_tokens(logits: torch.Tensor, s: SamplingSettings, generator: torch.Generator) -> torch.Tensor:
    """[b, V] logits -> [b] sampled ids (argmax at temperature 0)."""
    logits = logits[:, : s.vocab_size].float()
    if s.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / s.temperature, dim=-1)
    if s.top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p >= s.top_p  # keeps at least the top token
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


def forward_logits(model: Any, tokens: torch.Tensor, start: int, context: Optional[Any]) -> torch.Tensor:
    """Logits [b, V] of the last position of `tokens` [b, l] (positions from `start`)."""
    positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
    positions = positions[None].expand_as(tokens)
    mask = causal_mask(tokens.shape[1], tokens.device) if tokens.shape[1] > 1 else None
    if context is None:
        out = model(tokens, positions, mask, runtime_gather_output=True)
    else:
        out = model(tokens, positions, mask, inference_context=context, runtime_gather_output=True)
    return out[:, -1]


def causal_mask(length: int, device: Any = None) -> torch.Tensor:
    """[1, 1, l, l] bool, True above the diagonal (masked, Megatron's convention). Megatron builds
    its default one on CUDA, so CPU runs pass it explicitly."""
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)[None, None]


def _sample_batch(model: Any, prompts: torch.Tensor, s: SamplingSettings, generator: torch.Generator) -> torch.Tensor:
    """[b, l] prompts of one length -> [b, max_new_tokens] new ids (eos after the stop)."""
    b, length = prompts.shape
    context = inference_compat.static_context(b, length + s.max_new_tokens) if s.use_cache else None
    done = torch.zeros(b, dtype=torch.bool, device=prompts.device)
    seq, out = prompts, []
    logits = forward_logits(model, prompts, 0, context)
    for step in range(s.max_new_tokens):
        token = next_tokens(logits, s, generator).masked_fill(done, s.eos)
        out.append(token)
        done |= token == s.eos
        if bool(done.all()) or step == s.max_new_tokens - 1:
            break
        seq = torch.cat([seq, token[:, None]], dim=1)
        if context is None:
            logits = forward_logits(model, seq, 0, None)
        else:
            inference_compat.advance(context, seq.shape[1] - 1)
            logits = forward_logits(model, token[:, None], seq.shape[1] - 1, context)
    new = torch.stack(out, dim=1)
    return torch.nn.functional.pad(new, (0, s.max_new_tokens - new.shape[1]), value=s.eos)


@dataclass
class Generated:
    """Samples of `generate`, in the order of its prompts."""

    responses: List[List[int]]
    """New token ids of each sample, up to and including its eos when it stopped."""
    stopped: List[bool]
    """Whether each sample ended with eos (else it ran out of max_new_tokens)."""

    def num_tokens(self) -> int:
        return sum(len(r) for r in self.responses)


def _trim(row: Sequence[int], eos: int) -> List[int]:
    row = list(row)
    return row[: row.index(eos) + 1] if eos in row else row


@torch.no_grad()
def generate(
    model: Any, prompts: Sequence[Sequence[int]], s: SamplingSettings, device: Optional[torch.device] = None
) -> Generated:
    """Sample one continuation of each prompt (repeat a prompt G times for G samples)."""
    generator = torch.Generator().manual_seed(int(s.seed))
    by_length: Dict[int, List[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_length[len(p)].append(i)
    rows: Dict[int, List[int]] = {}
    was_training = model.training
    model.eval()
    try:
        with inference_compat.generation_mode():
            for length in sorted(by_length):
                members = by_length[length]
                batch = torch.tensor([list(prompts[i]) for i in members], device=device)
                new = _sample_batch(model, batch, s, generator).tolist()
                rows.update(zip(members, new, strict=True))
    finally:
        model.train(was_training)
    responses = [_trim(rows[i], s.eos) for i in range(len(prompts))]
    return Generated(responses, [bool(r) and r[-1] == s.eos for r in responses])
