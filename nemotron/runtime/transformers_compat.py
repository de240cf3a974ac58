"""Everything we use of `transformers` that is not a plain, stable call: the one compat module.

transformers 5 renamed `from_pretrained(torch_dtype=...)` to `dtype=`; the eager attention path is
asked for by name so logits are compared against the reference implementation, not a fused kernel.

Chat templates (SFT/DPO data prep, RL prompts) are rendered by transformers' own chat-template code,
so data is tokenized as the model is prompted with `apply_chat_template`: the same Jinja environment
(`trim_blocks`, `lstrip_blocks`, loop controls, `raise_exception`, its `tojson`, `strftime_now`), the
same preparation of messages and tools, and the `{% generation %}` spans behind
`return_assistant_tokens_mask`. Those helpers live in `transformers.utils.chat_template_utils` and
are not public API, hence the version check. Importing them costs about 1.5-2 s (no torch); this
module imports torch only for the model functions. `SUPPORTED` is the range checked (pyproject.toml
declares the same): the private chat-template helpers bound it above.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Sequence, Tuple

from nemotron.common.versions import refusal

if TYPE_CHECKING:
    import torch

CHAT_TEMPLATE_MAJORS = (5,)
"""transformers majors whose `_compile_jinja_template` and `render_jinja_template` we call."""
_GENERATION = re.compile(r"\{\%-?\s*generation\s*-?\%\}")
"""How transformers tells that a template has `{% generation %}` blocks."""

SUPPORTED = {"transformers": ">=5.0,<6"}
"""The transformers releases this module was checked against (chat templates: 5.x's private helpers)."""


def load_causal_lm(path: str) -> Any:
    """The HF causal LM in `path`, fp32, eager attention, eval mode, on CPU."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    refused = refusal(SUPPORTED, "nemotron/runtime/transformers_compat.py", {"transformers": transformers.__version__})
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
    import torch

    with torch.no_grad():
        return model(input_ids=tokens, use_cache=False).logits.float()


# ---- chat templates ------------------------------------------------------------------------------


def _chat_template_utils() -> Any:
    import transformers

    if _major() not in CHAT_TEMPLATE_MAJORS:
        raise ImportError(
            f"transformers {transformers.__version__} is installed; chat templates are rendered with the "
            f"chat-template code of transformers {' or '.join(f'{m}.x' for m in CHAT_TEMPLATE_MAJORS)} "
            "(nemotron/runtime/transformers_compat.py)"
        )
    from transformers.utils import chat_template_utils

    return chat_template_utils


def chat_template_version() -> str:
    """The transformers version that renders chat templates (part of what a prepared shard records)."""
    import transformers

    return str(transformers.__version__)


def compile_chat_template(template: str) -> Any:
    """The template compiled in transformers' chat-template environment; raises jinja2.TemplateError."""
    return _chat_template_utils()._compile_jinja_template(template)


def render_chat(
    template: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Optional[Sequence[Mapping[str, Any]]],
    template_kwargs: Mapping[str, Any],
) -> Tuple[str, List[Tuple[int, int]]]:
    """(text, [start, end) character spans of its `{% generation %}` blocks) of one conversation, as
    `apply_chat_template(messages, tools=tools, tokenize=False)` renders it (`template_kwargs`: the
    tokenizer's special tokens) and as `return_assistant_tokens_mask` finds the blocks. Messages are
    passed as given (dicts whose None values were dropped, as apply_chat_template does)."""
    rendered, indices = _chat_template_utils().render_jinja_template(
        conversations=[list(messages)],
        tools=None if tools is None else list(tools),
        chat_template=template,
        return_assistant_tokens_mask=bool(_GENERATION.search(template)),
        add_generation_prompt=False,
        **dict(template_kwargs),
    )
    spans: List[Tuple[int, int]] = [(int(s), int(e)) for s, e in indices[0]] if indices else []
    return rendered[0], spans
