"""The local lm-eval tasks (`nemotron.common.eval_tasks.LOCAL_TASKS`): JSONL documents and task YAMLs
over them, generated on first use under `<paths.cache_dir>/eval/` (no network, no hub).

- `nemotron_arithmetic` (generate_until, exact match): `What is a + b?` rendered with the run's chat
  template up to the assistant's answer, as GRPO's prompts are, on sums GRPO's generated prompts never
  ask (a fixed seeded quarter of the pairs; their order seeded by `eval.seed`);
- `nemotron_topic_choice` (multiple_choice, acc by loglikelihood): the opening of a tiny-corpus document
  and four sentences, one from each topic; the right one is of the document's topic;
- `nemotron_tiny_ppl` (loglikelihood_rolling: word/byte perplexity, bits per byte): the documents of the
  embedded corpus' test split (`data.split`), which no training step reads.

The folder's name hashes everything the files depend on, so a change generates a new one.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Callable, Dict, List

from nemotron.common.atomic_files import write_atomic
from nemotron.common.eval_tasks import LOCAL_TASKS, heldout_arithmetic, heldout_range
from nemotron.runtime.data import gpt as data
from nemotron.runtime.data.rl import arithmetic_question

TASKS_VERSION = 3
"""Bump when the documents or YAMLs of the local tasks change."""

_METRIC = "  - metric: {name}\n    aggregation: {agg}\n    higher_is_better: {better}\n"
_EXACT = _METRIC.format(name="exact_match", agg="mean", better="true") + "    ignore_case: true\n"


def _yaml(name: str, path: Path, body: str) -> str:
    head = f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files: {json.dumps(str(path))}\n"
    return head + "test_split: train\n" + body


YAMLS: Dict[str, str] = {
    "nemotron_arithmetic": (
        "output_type: generate_until\ndoc_to_text: '{{prompt}}'\ndoc_to_target: '{{answer}}'\n"
        "generation_kwargs:\n  until: ['\\n', '<|endoftext|>']\n  do_sample: false\n  max_gen_toks: 8\n"
        "filter_list:\n  - name: strip\n    filter:\n      - function: regex\n"
        "        regex_pattern: '(-?\\d+)'\n        group_select: 0\n      - function: take_first\n"
        "metric_list:\n" + _EXACT
    ),
    "nemotron_topic_choice": (
        "output_type: multiple_choice\ndoc_to_text: '{{context}}'\ndoc_to_choice: '{{choices}}'\n"
        "doc_to_target: '{{label}}'\nmetric_list:\n"
        + _METRIC.format(name="acc", agg="mean", better="true")
        + _METRIC.format(name="acc_norm", agg="mean", better="true")
    ),
    "nemotron_tiny_ppl": (
        "output_type: loglikelihood_rolling\ndoc_to_text: ''\ndoc_to_target: '{{text}}'\nmetric_list:\n"
        + _METRIC.format(name="word_perplexity", agg="weighted_perplexity", better="false")
        + _METRIC.format(name="byte_perplexity", agg="weighted_perplexity", better="false")
        + _METRIC.format(name="bits_per_byte", agg="bits_per_byte", better="false")
    ),
}
"""lm-eval task YAML bodies (after task, dataset and split lines)."""


def arithmetic_docs(cfg: Any, render: Callable[[str], str]) -> List[Dict[str, str]]:
    """Up to `eval.num_examples` distinct sums of those GRPO's generated prompts never ask (a fixed
    quarter of them: nemotron.common.eval_tasks.arithmetic_heldout), each rendered by `render` (the chat
    prompt)."""
    held = heldout_arithmetic(int(cfg.eval.num_examples), int(cfg.eval.seed), int(cfg.rl.max_operand))
    pairs = [arithmetic_question(a, b) for a, b in held]
    return [{"prompt": render(q), "question": q, "answer": a} for q, a in pairs]


def topic_docs(cfg: Any) -> List[Dict[str, Any]]:
    """Documents' first two sentences and one next sentence per topic (label: the document's)."""
    rng = random.Random(int(cfg.eval.seed))
    topics = sorted(data.TOPICS)
    docs = []
    for _ in range(int(cfg.eval.num_examples)):
        label = rng.randrange(len(topics))
        grammar = data.Grammar(rng, topics[label])
        context = f"About the {topics[label]}. " + " ".join(grammar.sentence() for _ in range(2))
        choices = [data.Grammar(rng, t).sentence() for t in topics]
        docs.append({"context": context, "choices": choices, "label": label})
    return docs


def heldout_docs(cfg: Any) -> List[Dict[str, str]]:
    """The embedded corpus' test split (its validation split when the test split is empty)."""
    d = cfg.data
    documents = data.generate_corpus(int(d.num_documents), int(d.seed))
    return [{"text": documents[i]} for i in heldout_range(d.split, len(documents))]


def _key(cfg: Any, template: str) -> str:
    d, e = cfg.data, cfg.eval
    parts = [TASKS_VERSION, e.seed, e.num_examples, cfg.rl.max_operand, d.num_documents, d.seed, d.split, template]
    return hashlib.sha1(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:12]


def _write_jsonl(path: Path, docs: List[Dict[str, Any]]) -> None:
    write_atomic(path, "".join(json.dumps(doc) + "\n" for doc in docs).encode())


def prepare_tasks(cfg: Any, render: Callable[[str], str], template: str) -> Path:
    """The folder of the local tasks' YAMLs and JSONL files for `cfg` (written if missing)."""
    out = Path(str(cfg.paths.cache_dir)) / "eval" / f"tasks-v{TASKS_VERSION}-{_key(cfg, template)}"
    if all((out / f"{name}.yaml").is_file() for name in LOCAL_TASKS):
        return out
    out.mkdir(parents=True, exist_ok=True)
    docs = {
        "nemotron_arithmetic": arithmetic_docs(cfg, render),
        "nemotron_topic_choice": topic_docs(cfg),
        "nemotron_tiny_ppl": heldout_docs(cfg),
    }
    for name, rows in docs.items():
        _write_jsonl(out / f"{name}.jsonl", rows)
        write_atomic(out / f"{name}.yaml", _yaml(name, (out / f"{name}.jsonl").resolve(), YAMLS[name]).encode())
    return out
