"""The local lm-eval tasks shipped with the project and the one-line answer to an unknown task name
(standard library only: compose checks names, the runtime builds the tasks)."""

from __future__ import annotations

import difflib
import random
from typing import Any, Dict, List, Tuple

LOCAL_TASKS = {
    "nemotron_arithmetic": "generation, exact match: `What is a + b?` on sums GRPO never trains on",
    "nemotron_topic_choice": "multiple choice by loglikelihood: which sentence continues a tiny-corpus text",
    "nemotron_tiny_ppl": "perplexity (loglikelihood_rolling) on the held-out split of the embedded corpus",
}
"""Tasks generated in the repo (nemotron/runtime/eval/tasks.py): name -> what it measures."""
RESULTS_FILE = "eval_results.json"
"""lm-eval's results of an eval run, in its run directory (the eval stage writes it; lineage registers it)."""
LOCAL_PREFIX = "nemotron_"
"""Task names with this prefix are ours, so compose can tell a typo among them."""


def unknown_task_line(name: str, known: List[str]) -> str:
    """One line: `name` is no task, with the closest of `known`."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else f"; local tasks: {', '.join(LOCAL_TASKS)}"
    return f"eval.tasks: unknown task {name!r}{hint}"


def split_range(split: str, num: int, index: int) -> range:
    """Documents of split `index` (0 train, 1 valid, 2 test) of `num`, as Megatron's dataset builder
    divides them (`data.split`, e.g. "98,1,1")."""
    weights = [float(w) for w in str(split).replace("/", ",").split(",")]
    weights += [0.0] * (3 - len(weights))
    bounds = [0]
    for w in weights:
        bounds.append(bounds[-1] + int(round(w / sum(weights) * num)))
    bounds = [b - (bounds[-1] - num) if i else b for i, b in enumerate(bounds)]
    return range(bounds[index], bounds[index + 1])


def heldout_range(split: str, num: int) -> range:
    """The embedded corpus' test split (its validation split when the test split is empty)."""
    return split_range(split, num, 2) or split_range(split, num, 1)


def local_task_sizes(cfg: Any) -> Dict[str, int]:
    """Documents of each local task for `cfg` (known at compose: `eval.num_examples`, the corpus' split)."""
    generated, operand = int(cfg.eval.num_examples), int(cfg.rl.max_operand)
    sums = generated if (operand + 1) ** 2 > _ENUMERATED else len(heldout_arithmetic(generated, 0, operand))
    heldout = len(heldout_range(str(cfg.data.split), int(cfg.data.num_documents)))
    return {"nemotron_arithmetic": sums, "nemotron_topic_choice": generated, "nemotron_tiny_ppl": heldout}


HELDOUT_FRACTION = 0.25
"""Share of the `a + b` pairs held out of GRPO's generated arithmetic prompts for nemotron_arithmetic."""
_ENUMERATED = 10_000
"""Up to this many pairs (rl.max_operand <= 99) the held-out ones are listed; above, drawn."""


def arithmetic_heldout(a: int, b: int) -> bool:
    """Whether `a + b` is held out for evaluation: a fixed seeded quarter of the pairs, the same for
    every seed, so the eval task never asks what GRPO trained on (data.seed and eval.seed differ
    freely)."""
    return random.Random(f"nemotron-heldout:{a}+{b}").random() < HELDOUT_FRACTION


def _pairs(max_operand: int) -> List[Tuple[int, int]]:
    return [(a, b) for a in range(max_operand + 1) for b in range(max_operand + 1)]


def holds_out(max_operand: int) -> bool:
    """Whether the split holds anything out: GRPO keeps every pair when none would be left to it."""
    if (max_operand + 1) ** 2 > _ENUMERATED:
        return True
    return not all(arithmetic_heldout(a, b) for a, b in _pairs(max_operand))


def heldout_arithmetic(num: int, seed: int, max_operand: int) -> List[Tuple[int, int]]:
    """Up to `num` distinct held-out pairs, in a seeded order (`seed`: eval.seed)."""
    rng = random.Random(seed)
    if (max_operand + 1) ** 2 <= _ENUMERATED:
        kept = [p for p in _pairs(max_operand) if arithmetic_heldout(*p)] if holds_out(max_operand) else []
        return rng.sample(kept, min(num, len(kept)))
    found: Dict[Tuple[int, int], None] = {}
    while len(found) < num:  # a quarter of at least 10,000 pairs: enough for any eval.num_examples
        pair = rng.randint(0, max_operand), rng.randint(0, max_operand)
        if arithmetic_heldout(*pair):
            found[pair] = None
    return list(found)
