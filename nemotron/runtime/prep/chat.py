"""Chat conversations -> rendered text and the character spans the loss covers (no torch, no megatron).

A conversation is one JSON line: `{"messages": [{"role": ..., "content": ...}, ...]}` with roles
system, user and assistant (the format of common chat datasets), or `{"prompt": ..., "completion":
...}`, read as one user and one assistant message.

Templates are Jinja, as in Hugging Face tokenizer configs: they see `messages`, `eos_token`,
`bos_token` and `add_generation_prompt` (false), and mark what the model learns to produce with
`{% generation %}...{% endgeneration %}` blocks (the markers HF's `return_assistant_tokens_mask`
reads). Only marked text is in the loss: put each assistant turn's content and its end-of-turn token
inside the block. A template with no such block yields masks with no loss tokens: `check_template`
refuses it before any data is written. The template is `data.chat_template` (a .jinja path or the
template text), else `chat_template` of a `tokenizer_config.json` beside the tokenizer, else
`DEFAULT_TEMPLATE`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROLES = ("system", "user", "assistant")
"""Roles a message may have."""
_OPEN, _CLOSE = "\ue000", "\ue001"
"""Private-use characters the generation block wraps around its output while rendering."""

DEFAULT_TEMPLATE = (
    "{% for message in messages %}<|{{ message.role }}|>\n"
    "{% if message.role == 'assistant' %}"
    "{% generation %}{{ message.content }}{{ eos_token }}{% endgeneration %}"
    "{% else %}{{ message.content }}{% endif %}\n"
    "{% endfor %}"
)
"""ChatML-like turns `<|role|>\\n<content>\\n`; an assistant turn ends with the EOD token, and its
content plus that token are the loss. The role markers are plain text, so any tokenizer (the tiny
BPE of the pretraining data included) renders it without new special tokens."""


class ChatDataError(ValueError):
    """A conversation line or a template is unusable; the message names file:line or the key."""


@dataclass(frozen=True)
class Rendered:
    """A rendered conversation: its text and the [start, end) character spans in the loss."""

    text: str
    spans: Tuple[Tuple[int, int], ...]


def parse_conversation(line: str, where: str) -> Optional[List[Dict[str, str]]]:
    """The messages of one JSONL line (`where` is file:line); None for a blank line."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except ValueError as err:
        raise ChatDataError(f"{where}: not a JSON object ({err.msg})") from None
    if not isinstance(record, dict):
        raise ChatDataError(f"{where}: a JSON {type(record).__name__}, expected an object "
                            "with `messages` or `prompt`/`completion`")
    if "messages" in record:
        return checked_messages(record["messages"], where)
    if "prompt" in record and "completion" in record:
        return checked_messages([{"role": "user", "content": record["prompt"]},
                          {"role": "assistant", "content": record["completion"]}], where)
    raise ChatDataError(f"{where}: no `messages` list and no `prompt`/`completion` pair "
                        f"(keys: {sorted(record)[:8]})")


def checked_messages(value: Any, where: str) -> List[Dict[str, str]]:
    if not isinstance(value, list):
        raise ChatDataError(f"{where}: `messages` is a {type(value).__name__}, expected a list")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ChatDataError(f"{where}: messages[{i}] needs `role` and `content`")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise ChatDataError(f"{where}: messages[{i}] has role {role!r}; expected one of "
                                f"{', '.join(ROLES)}")
        if not isinstance(content, str):
            raise ChatDataError(f"{where}: messages[{i}].content is a {type(content).__name__}, "
                                "expected a string")
        if _OPEN in content or _CLOSE in content:
            raise ChatDataError(f"{where}: messages[{i}].content holds U+E000/U+E001, which the "
                                "renderer reserves")
        out.append({"role": role, "content": content})
    return out


def has_assistant(messages: Sequence[Dict[str, str]]) -> bool:
    """Whether a conversation has anything to learn from."""
    return any(m["role"] == "assistant" and m["content"] for m in messages)


# ---- templates -----------------------------------------------------------------------------------


def template_source(chat_template: Optional[str], tokenizer_path: Optional[str]) -> Tuple[str, str]:
    """(template text, where it came from): data.chat_template, the tokenizer config, or the default."""
    if chat_template:
        path = Path(chat_template)
        if chat_template.endswith(".jinja") or (len(chat_template) < 4096 and path.is_file()):
            if not path.is_file():
                raise ChatDataError(f"data.chat_template={chat_template}: file not found")
            return path.read_text(encoding="utf-8"), str(path)
        return chat_template, "data.chat_template"
    if tokenizer_path:
        config = Path(tokenizer_path).parent / "tokenizer_config.json"
        if config.is_file():
            template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
            if isinstance(template, str):
                return template, str(config)
    return DEFAULT_TEMPLATE, "the default template (nemotron.runtime.prep.chat.DEFAULT_TEMPLATE)"


def _generation_extension() -> type:
    from jinja2 import nodes
    from jinja2.ext import Extension

    class GenerationBlock(Extension):
        """`{% generation %}body{% endgeneration %}` renders the body between the two markers."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_mark"), [], [], body).set_lineno(lineno)

        def _mark(self, caller: Any) -> str:
            return _OPEN + caller() + _CLOSE

    return GenerationBlock


class ChatRenderer:
    """Renders conversations with one Jinja template (sandboxed, as HF does)."""

    def __init__(self, template: str, eos_token: str, origin: str = "data.chat_template") -> None:
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(extensions=[_generation_extension()],
                                            keep_trailing_newline=True)
        try:
            self._template = env.from_string(template)
        except TemplateError as err:
            raise ChatDataError(f"chat template ({origin}) does not compile: {err}") from None
        self.eos_token, self.origin = eos_token, origin

    def render(self, messages: Sequence[Dict[str, str]], where: str) -> Rendered:
        """The text and loss spans of `messages`; a template error names `where`."""
        try:
            marked = self._template.render(messages=list(messages), eos_token=self.eos_token,
                                           bos_token="", add_generation_prompt=False)
        except Exception as err:  # noqa: BLE001 - a template may raise anything; name the line
            raise ChatDataError(f"{where}: the chat template ({self.origin}) failed to render: "
                                f"{type(err).__name__}: {err}") from None
        return _split_marks(marked, where)


def _split_marks(marked: str, where: str) -> Rendered:
    """Drop the markers; each open/close pair becomes a span of the remaining text."""
    text: List[str] = []
    spans: List[Tuple[int, int]] = []
    length, start = 0, None
    for i, piece in enumerate(re.split(f"([{_OPEN}{_CLOSE}])", marked)):
        if i % 2 == 0:
            text.append(piece)
            length += len(piece)
        elif (piece == _OPEN) == (start is not None):
            raise ChatDataError(f"{where}: nested or unbalanced {{% generation %}} blocks")
        elif piece == _OPEN:
            start = length
        else:
            if length > start:
                spans.append((start, length))
            start = None
    return Rendered("".join(text), tuple(spans))


_PROBE = [{"role": "system", "content": "probe system text"},
          {"role": "user", "content": "probe user text"},
          {"role": "assistant", "content": "probe assistant text"}]


def check_template(renderer: ChatRenderer) -> None:
    """Refuse a template whose masks would be broken, in one line, before any data is written."""
    rendered = renderer.render(_PROBE, "probe conversation")
    covered = "".join(rendered.text[s:e] for s, e in rendered.spans)
    fix = ("wrap each assistant message's content and end-of-turn token in "
           "{% generation %}...{% endgeneration %}")
    if not rendered.spans:
        raise ChatDataError(f"chat template ({renderer.origin}) never marks assistant text, so "
                            f"every loss mask would be empty: {fix}")
    if _PROBE[2]["content"] not in covered:
        raise ChatDataError(f"chat template ({renderer.origin}) leaves assistant content out of its "
                            f"generation blocks: {fix}")
    if _PROBE[1]["content"] in covered or _PROBE[0]["content"] in covered:
        raise ChatDataError(f"chat template ({renderer.origin}) puts system or user text inside a "
                            f"generation block, so the loss would cover prompts: {fix} only")
    if covered == rendered.text:
        raise ChatDataError(f"chat template ({renderer.origin}) marks every character, so every "
                            f"loss mask would be all ones: {fix} only")


def token_mask(offsets: Sequence[Tuple[int, int]], spans: Sequence[Tuple[int, int]]) -> Any:
    """uint8 per token: 1 where the token's first character lies in a loss span (sorted, disjoint)."""
    import numpy as np

    starts = np.fromiter((o[0] for o in offsets), np.int64, len(offsets))
    edges = np.asarray(spans, np.int64).reshape(-1)
    return (np.searchsorted(edges, starts, side="right") % 2).astype(np.uint8)
