"""Preference pairs: one JSONL line -> (prompt, chosen, rejected) messages (no torch, no megatron).

A line is TRL's preference format, either explicit or with an implicit prompt:

    {"prompt": "2+2?", "chosen": "4", "rejected": "5"}
    {"prompt": [{"role": "user", "content": "2+2?"}], "chosen": [{"role": "assistant", ...}], ...}
    {"chosen": [<user>, <assistant 4>], "rejected": [<user>, <assistant 5>]}

A string prompt is one user message and a string answer one assistant message; without `prompt`,
the messages `chosen` and `rejected` share from the start are the prompt. Each answer must end
with an assistant message; a `tools` list on the line reaches the template for both sides. Errors name
file:line and the key (nemotron.runtime.prep.chat.ChatDataError).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from nemotron.runtime.prep import chat

Messages = List[Dict[str, str]]


@dataclass(frozen=True)
class Pair:
    """One preference: the shared prompt and the two answers (each one or more messages)."""

    prompt: Tuple[Dict[str, str], ...]
    chosen: Tuple[Dict[str, str], ...]
    rejected: Tuple[Dict[str, str], ...]
    tools: Optional[Tuple[Dict[str, Any], ...]] = None
    """The line's `tools` (tool schemas the template is given), if it has them."""

    def conversation(self, side: str) -> Messages:
        """The whole conversation of `side` (`chosen` or `rejected`): prompt, then that answer."""
        return [*self.prompt, *getattr(self, side)]

    def answer_turns(self, side: str) -> int:
        """How many assistant messages the answer of `side` has (its loss spans, last in the render)."""
        return sum(m["role"] == "assistant" for m in getattr(self, side))


def _as_messages(value: Any, role: str, key: str, where: str) -> Messages:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, list):
        return chat.checked_messages(value, f"{where}: `{key}`")
    raise chat.ChatDataError(f"{where}: `{key}` is a {type(value).__name__}, expected a string or a list of messages")


def _split_implicit(chosen: Messages, rejected: Messages, where: str) -> Tuple[Messages, Messages, Messages]:
    """(prompt, chosen answer, rejected answer): the shared leading messages are the prompt."""
    n = 0
    while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
        n += 1
    if n == 0:
        raise chat.ChatDataError(
            f"{where}: no `prompt`, and `chosen` and `rejected` share no leading message to take as one"
        )
    return chosen[:n], chosen[n:], rejected[n:]


def _check_answer(answer: Messages, key: str, where: str) -> None:
    if not answer or answer[-1]["role"] != "assistant":
        raise chat.ChatDataError(
            f"{where}: `{key}` must end with an assistant message (roles: {[m['role'] for m in answer]})"
        )


def parse_pair(line: Any, where: str) -> Optional[Pair]:
    """The pair on one JSONL line or parquet row (a dict; `where` is file:line); None for a blank line."""
    record = chat.json_record(line, where)
    if record is None:
        return None
    if not isinstance(record, dict) or "chosen" not in record or "rejected" not in record:
        keys = sorted(record)[:8] if isinstance(record, dict) else type(record).__name__
        raise chat.ChatDataError(
            f"{where}: a preference pair needs `chosen` and `rejected` (and usually `prompt`); found {keys}"
        )
    chosen = _as_messages(record["chosen"], "assistant", "chosen", where)
    rejected = _as_messages(record["rejected"], "assistant", "rejected", where)
    if "prompt" in record:
        prompt = _as_messages(record["prompt"], "user", "prompt", where)
    else:
        prompt, chosen, rejected = _split_implicit(chosen, rejected, where)
    _check_answer(chosen, "chosen", where)
    _check_answer(rejected, "rejected", where)
    tools = chat.checked_tools(record.get("tools"), where)
    return Pair(tuple(prompt), tuple(chosen), tuple(rejected), None if tools is None else tuple(tools))
