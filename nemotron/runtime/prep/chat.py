"""Chat conversations -> rendered text and the character spans the loss covers (no torch, no megatron).

A conversation is one JSON line: `{"messages": [...]}` (optionally with `"tools": [...]`, the
OpenAI/TRL tool-calling format), a bare list of messages, or `{"prompt": ..., "completion": ...}`
(strings: one user and one assistant message; lists: prompt messages, then completion messages).
Roles are system, user, assistant and tool; an assistant message may carry `tool_calls` (a list of
objects) instead of, or besides, its content. Messages reach the template as given (content a string
or a list of parts, any other keys kept), with None values dropped, as `apply_chat_template` does.

Templates are Jinja, as in Hugging Face tokenizer configs, and are rendered by transformers' own
chat-template code (nemotron/runtime/transformers_compat.py), so the text is exactly
`tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)`: they see `messages`,
`tools`, `add_generation_prompt` (false) and the tokenizer's special tokens (those of a
tokenizer_config.json beside the tokenizer; `eos_token` is `data.eod_token` when it names none).
What the model learns to produce is marked with `{% generation %}...{% endgeneration %}` blocks,
and a token is in the loss when it overlaps one (the rule of `return_assistant_tokens_mask`): put
each assistant turn's content and its end-of-turn token inside the block. A template with no such
block yields masks with no loss tokens: `check_template` refuses it before any data is written. The
template is `data.chat_template` (a .jinja path or the template text), else the tokenizer's
(`chat_template.jinja` or the `chat_template` of `tokenizer_config.json` beside it), else
`DEFAULT_TEMPLATE`.

The training side imports this module for its parsing; transformers is imported only when a
`ChatRenderer` is built (data prep, RL prompts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

ROLES = ("system", "user", "assistant", "tool")
"""Roles a message may have."""
SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
"""The tokenizer_config.json keys a tokenizer hands a chat template (its `special_tokens_map`)."""

DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message.role + '|>\\n' }}"
    "{% if message.role == 'assistant' %}"
    "{% generation %}{{ message.content }}{{ eos_token }}{% endgeneration %}"
    "{% else %}{{ message.content }}{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
)
"""ChatML-like turns `<|role|>\\n<content>\\n`; an assistant turn ends with the EOD token, and its
content plus that token are the loss. The role markers are plain text, so any tokenizer (the tiny
BPE of the pretraining data included) renders it without new special tokens. (Its newlines are
printed by `{{ }}`: with `trim_blocks`, as transformers renders, a newline right after a `{% %}` tag
is dropped.)"""

Message = Dict[str, Any]


class ChatDataError(ValueError):
    """A conversation line or a template is unusable; the message names file:line or the key."""


@dataclass(frozen=True)
class Rendered:
    """A rendered conversation: its text and the [start, end) character spans of its generation
    blocks, in the order transformers records them (empty blocks included)."""

    text: str
    spans: Tuple[Tuple[int, int], ...]


@dataclass(frozen=True)
class Conversation:
    """One conversation line: its messages and the tools offered to the model (None: no `tools`)."""

    messages: List[Message]
    tools: Optional[List[Dict[str, Any]]] = None


def parse_conversation(line: str, where: str) -> Optional[List[Message]]:
    """The messages of one JSONL line (`where` is file:line); None for a blank line."""
    conversation = parse_chat(line, where)
    return None if conversation is None else conversation.messages


def json_record(line: Any, where: str) -> Any:
    """The record of one JSONL line (parsed) or parquet row (a dict, as is); None for a blank line."""
    if isinstance(line, dict):
        return line
    if not line.strip():
        return None
    try:
        return json.loads(line)
    except ValueError as err:
        raise ChatDataError(f"{where}: not a JSON object ({err.msg})") from None


def parse_chat(line: Any, where: str, messages_key: str = "messages") -> Optional[Conversation]:
    """The conversation of one JSONL line (or a parquet row, a dict), tools included (`where` is
    file:line); None when blank. The messages are under `messages_key` (data.messages_key)."""
    record = json_record(line, where)
    if record is None:
        return None
    if isinstance(record, list):
        return Conversation(checked_messages(record, where))
    if not isinstance(record, dict):
        raise ChatDataError(f"{where}: a JSON {type(record).__name__}, expected an object "
                            "with `messages` or `prompt`/`completion`")
    tools = checked_tools(record.get("tools"), where)
    if record.get(messages_key) is not None:
        return Conversation(checked_messages(record[messages_key], where), tools)
    if "prompt" in record and "completion" in record:
        prompt, completion = record["prompt"], record["completion"]
        if isinstance(prompt, list) and isinstance(completion, list):
            return Conversation(checked_messages([*prompt, *completion], where), tools)
        return Conversation(checked_messages([{"role": "user", "content": prompt},
                                              {"role": "assistant", "content": completion}], where), tools)
    raise ChatDataError(f"{where}: no `{messages_key}` list (data.messages_key) and no `prompt`/`completion` pair "
                        f"(keys: {sorted(record)[:8]})")


def checked_tools(value: Any, where: str) -> Optional[List[Dict[str, Any]]]:
    """A conversation's `tools`: a list of JSON schemas (objects), as apply_chat_template takes."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        what = type(value).__name__ if not isinstance(value, list) else "list with a non-object item"
        raise ChatDataError(f"{where}: `tools` is a {what}, expected a list of tool schemas (objects)")
    return value


def checked_messages(value: Any, where: str) -> List[Message]:
    """The messages of a conversation, each a dict as given less its None values."""
    if not isinstance(value, list):
        raise ChatDataError(f"{where}: `messages` is a {type(value).__name__}, expected a list")
    out = []
    for i, message in enumerate(value):
        if type(message) is dict and len(message) == 2 and type(message.get("content")) is str \
                and message.get("role") in ROLES:
            out.append(message)  # {"role", "content"}, both valid: nothing to drop or check
            continue
        if not isinstance(message, dict) or "role" not in message:
            raise ChatDataError(f"{where}: messages[{i}] needs `role` and `content`")
        message = {k: v for k, v in message.items() if v is not None}  # as apply_chat_template does
        role, content, calls = message.get("role"), message.get("content"), message.get("tool_calls")
        if role not in ROLES:
            raise ChatDataError(f"{where}: messages[{i}] has role {role!r}; expected one of "
                                f"{', '.join(ROLES)}")
        if calls is not None:
            if role != "assistant":
                raise ChatDataError(f"{where}: messages[{i}] is a {role} message with `tool_calls`; "
                                    "only assistant messages call tools")
            if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
                raise ChatDataError(f"{where}: messages[{i}].tool_calls is not a list of objects")
        if content is None and calls is None:
            raise ChatDataError(f"{where}: messages[{i}] needs `content`"
                                + (" (or `tool_calls`)" if role == "assistant" else ""))
        if content is not None and not isinstance(content, (str, list)):
            raise ChatDataError(f"{where}: messages[{i}].content is a {type(content).__name__}, "
                                "expected a string (or a list of content parts)")
        out.append(message)
    return out


def has_assistant(messages: Sequence[Message]) -> bool:
    """Whether a conversation has anything to learn from (an assistant turn with content or tool calls)."""
    return any(m["role"] == "assistant" and (m.get("content") or m.get("tool_calls")) for m in messages)


# ---- templates -----------------------------------------------------------------------------------


def template_source(chat_template: Optional[str], tokenizer_path: Optional[str]) -> Tuple[str, str]:
    """(template text, where it came from): data.chat_template, the tokenizer's, or the default."""
    if chat_template:
        path = Path(chat_template)
        if chat_template.endswith(".jinja") or (len(chat_template) < 4096 and path.is_file()):
            if not path.is_file():
                raise ChatDataError(f"data.chat_template={chat_template}: file not found")
            return path.read_text(encoding="utf-8"), str(path)
        return chat_template, "data.chat_template"
    if tokenizer_path:
        jinja = Path(tokenizer_path).parent / "chat_template.jinja"  # where save_pretrained puts it
        if jinja.is_file():
            return jinja.read_text(encoding="utf-8"), str(jinja)
        config = Path(tokenizer_path).parent / "tokenizer_config.json"
        template = _tokenizer_config(config).get("chat_template")
        if isinstance(template, list):  # named templates: the one apply_chat_template uses by default
            template = next((t.get("template") for t in template if isinstance(t, dict)
                             and t.get("name") == "default"), None)
        if isinstance(template, str):
            return template, str(config)
    return DEFAULT_TEMPLATE, "the default template (nemotron.runtime.prep.chat.DEFAULT_TEMPLATE)"


def _tokenizer_config(config: Path) -> Dict[str, Any]:
    if not config.is_file():
        return {}
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ChatDataError(f"{config}: not JSON ({err})") from None
    return data if isinstance(data, dict) else {}


def template_tokens(tokenizer_path: Optional[str], eod_token: str) -> Dict[str, str]:
    """What the template sees besides messages and tools: the special tokens of the tokenizer_config.json
    beside the tokenizer (a token saved as {"content": ...} is its content), as a transformers
    tokenizer passes its `special_tokens_map`; `eos_token` is `eod_token` when the config names none."""
    config = _tokenizer_config(Path(tokenizer_path).parent / "tokenizer_config.json") if tokenizer_path else {}
    out = {"eos_token": eod_token}
    for key in SPECIAL_TOKENS:
        value = config.get(key)
        value = value.get("content") if isinstance(value, dict) else value
        if isinstance(value, str):
            out[key] = value
    return out


class ChatRenderer:
    """Renders conversations with one template, as transformers' `apply_chat_template` does.

    `tokens` are the special tokens the template sees (`template_tokens`); without them, only
    `eos_token` (the EOD token) is defined."""

    def __init__(self, template: str, eos_token: str, origin: str = "data.chat_template",
                 tokens: Optional[Mapping[str, str]] = None) -> None:
        from jinja2 import TemplateError

        from nemotron.runtime import transformers_compat

        self._compat = transformers_compat
        try:
            transformers_compat.compile_chat_template(template)  # cached by transformers for render
        except TemplateError as err:
            raise ChatDataError(f"chat template ({origin}) does not compile: {err}") from None
        except ImportError as err:
            raise ChatDataError(f"chat template ({origin}) cannot be rendered: {err}") from None
        self.template, self.origin = template, origin
        self.tokens = dict(tokens) if tokens is not None else {"eos_token": eos_token}
        self.eos_token = self.tokens.get("eos_token", eos_token)
        self.version = f"transformers {transformers_compat.chat_template_version()}"
        """What renders (a prepared shard records it: another version may render differently)."""

    def render(self, messages: Sequence[Message], where: str,
               tools: Optional[Sequence[Dict[str, Any]]] = None) -> Rendered:
        """The text and generation spans of `messages`; a template error (`raise_exception`'s
        message included) names `where`."""
        try:
            text, spans = self._compat.render_chat(self.template, messages, tools, self.tokens)
        except Exception as err:  # noqa: BLE001 - a template may raise anything; name the line
            raise ChatDataError(f"{where}: the chat template ({self.origin}) failed to render: "
                                f"{type(err).__name__}: {err}") from None
        return Rendered(text, tuple(spans))


_PROBE = [{"role": "system", "content": "probe system text"},
          {"role": "user", "content": "probe user text"},
          {"role": "assistant", "content": "probe assistant text"}]


def check_template(renderer: ChatRenderer) -> None:
    """Refuse a template whose masks would be broken, in one line, before any data is written."""
    try:
        rendered = renderer.render(_PROBE, "probe conversation")
    except ChatDataError:  # some templates refuse a system message (raise_exception): probe without
        rendered = renderer.render(_PROBE[1:], "probe conversation (user, assistant)")
    covered = "".join(rendered.text[s:e] for s, e in rendered.spans)
    fix = ("wrap each assistant message's content and end-of-turn token in "
           "{% generation %}...{% endgeneration %}")
    if not covered:
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
    """uint8 per token: 1 where the token's [start, end) characters overlap a generation span, the
    rule of transformers' `return_assistant_tokens_mask` (spans in the order rendered)."""
    import numpy as np

    n = len(offsets)
    tok = np.fromiter((x for o in offsets for x in o[:2]), np.int64, 2 * n).reshape(n, 2)
    if not len(spans) or not n:
        return np.zeros(n, np.uint8)
    span = np.asarray(spans, np.int64).reshape(-1, 2)
    if np.all(np.diff(span[:, 1]) >= 0) and np.all(np.diff(tok[:, 0]) >= 0):
        # transformers walks tokens and spans together: a token goes with the first span not ending
        # at or before its start, and is in the loss when it ends after that span's start
        k = np.searchsorted(span[:, 1], tok[:, 0], side="right")
        inside = k < len(span)
        return (inside & (tok[:, 1] > span[np.minimum(k, len(span) - 1), 0])).astype(np.uint8)
    out, k = np.zeros(n, np.uint8), 0  # out of order: the same walk, one token at a time
    for t, (start, end) in enumerate(tok.tolist()):
        while k < len(span) and start >= span[k, 1]:
            k += 1
        if k == len(span):
            break
        out[t] = end > span[k, 0]
    return out


def token_masks(offsets: Sequence[Sequence[Tuple[int, int]]], spans: Sequence[Sequence[Tuple[int, int]]]) -> List[Any]:
    """`token_mask` of each conversation of a batch, the same arrays, in one vectorized pass.

    Conversation c's characters are moved to [c * M, c * M + M) (M: one past the largest offset or
    span end of the batch), so one sorted search over all spans finds each token's span: a token
    whose conversation has no span left finds a later conversation's span, which starts past its
    end (not in the loss, as in `token_mask`). A conversation with out-of-order token starts takes
    `token_mask` itself, and the whole batch does when span ends are out of order."""
    import itertools

    import numpy as np

    counts = np.fromiter(map(len, offsets), np.int64, len(offsets))
    span_counts = np.fromiter(map(len, spans), np.int64, len(spans))
    n, m = int(counts.sum()), int(span_counts.sum())
    tok = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(offsets)), np.int64, 2 * n)
    span = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(spans)), np.int64, 2 * m)
    tok, span = tok.reshape(n, 2), span.reshape(m, 2)
    if not n or not m:
        return [np.zeros(int(k), np.uint8) for k in counts]
    shift = max(int(tok.max()), int(span.max())) + 1
    starts = tok[:, 0] + np.repeat(np.arange(len(offsets), dtype=np.int64) * shift, counts)
    ends = tok[:, 1] + (starts - tok[:, 0])
    span = span + np.repeat(np.arange(len(spans), dtype=np.int64) * shift, span_counts)[:, None]
    if not np.all(np.diff(span[:, 1]) >= 0):
        return [token_mask(o, s) for o, s in zip(offsets, spans)]
    k = np.searchsorted(span[:, 1], starts, side="right")
    out = ((k < m) & (ends > span[np.minimum(k, m - 1), 0])).astype(np.uint8)
    masks = np.split(out, np.cumsum(counts)[:-1])
    for c in np.unique(np.searchsorted(np.cumsum(counts), np.flatnonzero(np.diff(starts) < 0), side="right")):
        masks[c] = token_mask(offsets[c], spans[c])  # out of order: transformers' walk, one token at a time
    return masks
