"""The local lm-eval tasks shipped with the project and the one-line answer to an unknown task name
(standard library only: compose checks names, the runtime builds the tasks)."""

from __future__ import annotations

import difflib
from typing import List

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
