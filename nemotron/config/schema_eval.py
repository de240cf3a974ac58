"""The `eval` config section: benchmark a checkpoint with lm-evaluation-harness (recipes gpt/eval, nano3/eval).

Read only by the eval stage (nemotron/runtime/eval/); other recipes carry it untouched. `eval.tasks`
names lm-eval tasks: the local ones shipped here (`LOCAL_TASKS`, generated under `paths.cache_dir` on
first use, no network) or any lm-eval task whose data is available offline. Local names are checked
at compose; other names when lm-eval has indexed its tasks, before the model is built. The
checkpoint's shape and tokenizer, and few-shot counts of the local tasks: nemotron/config/eval_rules.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

from nemotron.common.eval_tasks import LOCAL_PREFIX, LOCAL_TASKS, unknown_task_line
from nemotron.common.stages import is_eval
from nemotron.config.eval_rules import eval_checkpoint_shape, eval_task_sizes, eval_tokenizer_matches
from nemotron.config.ranges import AT_LEAST_1, NON_NEGATIVE, ranged


def _default_tasks() -> List[str]:
    return list(LOCAL_TASKS)


@dataclass
class EvalConfig:
    """lm-evaluation-harness settings (top-level `eval`; read by the */eval recipes)."""

    tasks: List[str] = field(default_factory=_default_tasks)
    """lm-eval task names: the local ones (nemotron_arithmetic, nemotron_topic_choice,
    nemotron_tiny_ppl) or any lm-eval task whose data is available offline."""
    num_fewshot: Optional[int] = ranged(None, NON_NEGATIVE)
    """Few-shot examples per prompt (null: each task's own default)."""
    limit: Optional[int] = ranged(None, AT_LEAST_1)
    """Evaluate at most this many documents of each task (null: all)."""
    batch_size: int = ranged(8, AT_LEAST_1)
    """Requests scored (or generated) together in one forward."""
    max_gen_toks: int = ranged(16, AT_LEAST_1)
    """Most tokens generated per generate_until request (a task's own `max_gen_toks` wins)."""
    num_examples: int = ranged(100, AT_LEAST_1)
    """Documents of each generated local task (the perplexity task takes the corpus' test split)."""
    bootstrap_iters: int = ranged(1000, NON_NEGATIVE)
    """Resamples for the stderr of metrics without a closed form (perplexities); 0 skips them."""
    seed: int = ranged(1234, NON_NEGATIVE)
    """Seed of the local tasks' documents and of lm-eval's few-shot sampling."""


def local_tasks_known(cfg: Any) -> Optional[str]:
    """eval.tasks: a `nemotron_*` name is one of LOCAL_TASKS (other names are lm-eval's, checked at run)."""
    if not is_eval(cfg):
        return None
    for name in cfg.eval.tasks:
        if str(name).startswith(LOCAL_PREFIX) and name not in LOCAL_TASKS:
            return unknown_task_line(str(name), list(LOCAL_TASKS))
    if not cfg.eval.tasks:
        return "eval.tasks is empty: name at least one task, e.g. eval.tasks=[nemotron_arithmetic]"
    return None


def eval_layout(cfg: Any) -> Optional[str]:
    """Evaluation runs on tensor x data parallel layouts (lm-eval splits documents over replicas)."""
    p = cfg.parallel
    if not is_eval(cfg):
        return None
    for key in ("pipeline_model_parallel_size", "context_parallel_size"):
        if (p[key] or 1) > 1:
            return f"parallel.{key}={p[key]}: evaluation runs with tensor and data parallelism only; use 1"
    return None


EVAL_RULES: List[Callable[[Any], Optional[str]]] = [
    local_tasks_known,
    eval_layout,
    eval_task_sizes,
    eval_checkpoint_shape,
    eval_tokenizer_matches,
]
"""Validation rules of eval runs (nemotron.config.validate.RULES holds them)."""
