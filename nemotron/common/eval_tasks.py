"""The local lm-eval tasks shipped with the project and the one-line answer to an unknown task name
(standard library only: compose checks names, the runtime builds the tasks)."""

from __future__ import annotations

import difflib
from typing import Any, Dict, List

LOCAL_TASKS = {
    "nemotron_arithmetic": "generation, exact match: `What is a + b?` (held out from GRPO's prompts)",
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
    generated = int(cfg.eval.num_examples)
    heldout = len(heldout_range(str(cfg.data.split), int(cfg.data.num_documents)))
    return {"nemotron_arithmetic": generated, "nemotron_topic_choice": generated, "nemotron_tiny_ppl": heldout}
