"""Everything we use of `transformers` that is not a plain, stable call: the one compat module.

transformers 5 renamed `from_pretrained(torch_dtype=...)` to `dtype=`; the eager attention path is
asked for by name so logits are compared against the reference implementation, not a fused kernel.
Only public API is used: `SUPPORTED` has no upper bound (pyproject.toml declares the same range).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from nemotron.common.versions import refusal

SUPPORTED = {"transformers": ">=5.0"}
"""The transformers releases this module was checked against (public API: no upper bound)."""


def load_causal_lm(path: str) -> Any:
    """The HF causal LM in `path`, fp32, eager attention, eval mode, on CPU."""
    import transformers
    from transformers import AutoModelForCausalLM

    refused = refusal(SUPPORTED, "nemotron/hf/transformers_compat.py", {"transformers": transformers.__version__})
    if refused:
        raise ImportError(refused)

    params = inspect.signature(AutoModelForCausalLM.from_pretrained).parameters
    dtype_key = "dtype" if "dtype" in params or _major() >= 5 else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", **{dtype_key: torch.float32})
    return model.eval()


def _major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def causal_lm_logits(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """[batch, seq, vocab] fp32 logits of an HF causal LM (no cache)."""
    with torch.no_grad():
        return model(input_ids=tokens, use_cache=False).logits.float()
