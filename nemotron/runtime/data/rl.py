"""GRPO prompts: the embedded synthetic verifiable task, or a JSONL file, rendered as chat prompts.

A prompt is the user turn rendered with the SFT chat template (`data.chat_template`, else the
tokenizer's, else `chat.DEFAULT_TEMPLATE`) up to where the assistant's answer starts, so the policy
answers in the format SFT taught it; generation stops at the template's end-of-turn token
(`data.eod_token`). The tokenizer is the one the embedded tiny data builds (data=tiny), or
`data.tokenizer_path`, so a tiny pretrained or SFT checkpoint fits. Prompts whose tokens plus
`rl.max_new_tokens` exceed `model.seq_length` are counted, said in one line, and skipped.
A `PromptDataset` item is only its index (a tensor, so Megatron-style micro-batches collate); the
step looks up the prompt's tokens, text and answer by index. Items are visited in a seeded order.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from nemotron.common import eval_tasks
from nemotron.runtime.prep import chat
from nemotron.runtime.data import gpt as data


def arithmetic_question(a: int, b: int) -> Tuple[str, str]:
    """(`What is a + b?`, `a+b`)."""
    return f"What is {a} + {b}?", str(a + b)


def arithmetic_task(num: int, seed: int, max_operand: int) -> List[Tuple[str, str]]:
    """`num` seeded (question, answer) pairs `What is a + b?` -> `a+b`, never one of the sums held out
    for the eval task nemotron_arithmetic (nemotron.common.eval_tasks.arithmetic_heldout)."""
    rng = random.Random(seed)
    skip = eval_tasks.arithmetic_heldout if eval_tasks.holds_out(max_operand) else (lambda a, b: False)
    out = []
    while len(out) < num:
        a, b = rng.randint(0, max_operand), rng.randint(0, max_operand)
        if not skip(a, b):
            out.append(arithmetic_question(a, b))
    return out


def reverse_task(num: int, seed: int, max_extra: int) -> List[Tuple[str, str]]:
    """`num` seeded (question, answer) pairs `Reverse: abc` -> `cba`."""
    rng = random.Random(seed)
    out = []
    for _ in range(num):
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 3 + max_extra)))
        out.append((f"Reverse this word: {word}", word[::-1]))
    return out


TASKS: Dict[str, Callable[[int, int, int], List[Tuple[str, str]]]] = {
    "arithmetic": arithmetic_task,
    "reverse": reverse_task,
}
"""The embedded tasks `rl.task` may name."""


def _read_prompt_file(path: str) -> List[Tuple[List[Dict[str, str]], str]]:
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        record = json.loads(line)
        if not isinstance(record, dict) or "answer" not in record:
            raise chat.ChatDataError(f"{where}: expected an object with `answer` and `prompt` (or `messages`)")
        messages = (
            chat.parse_conversation(json.dumps({"messages": record["messages"]}), where)
            if "messages" in record
            else chat.parse_conversation(json.dumps({"prompt": record["prompt"], "completion": ""}), where)[:1]
        )
        out.append((messages, str(record["answer"])))
    return out


def _questions(cfg: Any) -> List[Tuple[List[Dict[str, str]], str]]:
    rl = cfg.rl
    if rl.prompt_file:
        if not Path(rl.prompt_file).is_file():
            raise FileNotFoundError(f"rl.prompt_file={rl.prompt_file}: file not found")
        return _read_prompt_file(str(rl.prompt_file))
    if rl.task not in TASKS:
        raise ValueError(f"rl.task={rl.task!r}: expected one of {', '.join(TASKS)}")
    pairs = TASKS[rl.task](int(rl.num_prompts), int(cfg.data.seed), int(rl.max_operand))
    return [([{"role": "user", "content": q}], a) for q, a in pairs]


def prompt_text(renderer: chat.ChatRenderer, messages: List[Dict[str, str]], where: str) -> str:
    """The rendered conversation up to where the assistant's answer would start."""
    rendered = renderer.render([*messages, {"role": "assistant", "content": ""}], where)
    if not rendered.spans:
        raise chat.ChatDataError(
            f"the chat template ({renderer.origin}) marks no assistant turn, so no generation prompt can be cut from it"
        )
    return rendered.text[: rendered.spans[-1][0]]


@dataclass
class Prompt:
    """One usable prompt: its tokens, the user's question and the reference answer."""

    ids: List[int]
    question: str
    answer: str
    index: int
    """Its position in the task or prompt file (what a reward error names)."""


class PromptDataset(torch.utils.data.Dataset):
    """The usable prompts in a seeded order; an item is {"index": position in `prompts`}."""

    def __init__(self, prompts: List[Prompt], tokenizer: Any, skipped: int, seed: int) -> None:
        if not prompts:
            raise ValueError("no prompt fits: every prompt plus rl.max_new_tokens is longer than model.seq_length")
        self.prompts, self.tokenizer, self.skipped = prompts, tokenizer, skipped
        self.order = np.random.default_rng(seed).permutation(len(prompts))

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        return {"index": torch.tensor(int(self.order[index]))}


def rl_tokenizer(cfg: Any) -> data.TokenizerAdapter:
    """data.tokenizer_path, else the tokenizer of the embedded tiny data (prepared if missing)."""
    d = cfg.data
    if d.tokenizer_path:
        return data.TokenizerAdapter(str(d.tokenizer_path), d.eod_token)
    if d.blend_file:
        return data.resolve_data(d)[0]
    return data.TokenizerAdapter(str(data.prepare_tiny(d).parent / "tokenizer.json"), d.eod_token)


def build_prompts(cfg: Any, tokenizer: Any, say: Optional[Callable[[str], None]] = None) -> PromptDataset:
    """The prompt dataset of `cfg` (see the module docstring)."""
    source, origin = chat.template_source(cfg.data.chat_template, tokenizer.path)
    renderer = chat.ChatRenderer(source, cfg.data.eod_token, origin,
                                 chat.template_tokens(tokenizer.path, cfg.data.eod_token))
    limit = int(cfg.model.seq_length) - int(cfg.rl.max_new_tokens)
    prompts, skipped = [], 0
    for n, (messages, answer) in enumerate(_questions(cfg)):
        ids = tokenizer.tokenize(prompt_text(renderer, messages, f"prompt {n}"))
        if len(ids) > limit:
            skipped += 1
            continue
        prompts.append(Prompt(ids, messages[-1]["content"], answer, n))
    if skipped and say is not None:
        say(
            f"skipped {skipped} of {skipped + len(prompts)} prompts: longer than model.seq_length="
            f"{cfg.model.seq_length} minus rl.max_new_tokens={cfg.rl.max_new_tokens} tokens"
        )
    return PromptDataset(prompts, tokenizer, skipped, int(cfg.data.seed))
