"""Megatron-Core's inference context, in one place (how generation continues a batch of sequences).

megatron-core 0.16 passes a `StaticInferenceContext` to GPTModel / MambaModel forwards: attention
layers allocate their KV cache in its `key_value_memory_dict` (on `torch.cuda.current_device()`,
which cpu_compat points at the CPU) and read `sequence_len_offset`, the position the next forward
starts at, which the caller advances; only the last position's logits are computed
(`materialize_only_last_token_logits`). Older releases call it `InferenceParams`. Checked against the
Megatron-Core range of cpu_compat (`SUPPORTED`, refused outside it by `cpu_compat.install()`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from nemotron.runtime import cpu_compat

SUPPORTED = {"megatron-core": cpu_compat.SUPPORTED["megatron-core"]}
"""The Megatron-Core releases this module's use of the inference context was checked against."""


def static_context(batch_size: int, max_sequence_length: int) -> Any:
    """A fresh context for `batch_size` sequences of at most `max_sequence_length` tokens."""
    try:
        from megatron.core.inference.contexts import StaticInferenceContext
    except ImportError:  # before megatron-core 0.12
        from megatron.core import InferenceParams as StaticInferenceContext

    return StaticInferenceContext(batch_size, max_sequence_length)


def advance(context: Any, offset: int) -> None:
    """The next forward continues at position `offset` (tokens before it are cached)."""
    context.sequence_len_offset = offset
    if hasattr(context, "enable_decode_mode"):
        context.enable_decode_mode()


@contextlib.contextmanager
def generation_mode() -> Iterator[None]:
    """CPU quirks installed (KV buffers on 'cuda' land on the CPU)."""
    cpu_compat.install()
    yield
