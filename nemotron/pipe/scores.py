"""The eval scores of a pipeline's eval stages side by side: one row per task and metric, one column
per stage that produced an `eval` artifact (lm-eval's results JSON), printed when a local launch ends
and written to `<pipeline dir>/scores.md` (the Slurm finishing job writes the same file).

    task / metric                          eval_pretrain  eval_sft  eval_rl
    nemotron_arithmetic exact_match_strip  0.0000         0.0000    0.0385
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

SCORES_FILE = "scores.md"


def stage_scores(path: Path) -> Dict[str, float]:
    """`<task> <metric>` -> value from an lm-eval results JSON (nemotron.tracking.eval_compare)."""
    from nemotron.tracking.eval_compare import scores_of_results

    try:
        return scores_of_results(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def collect(stages: List[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """Stage -> its scores, for every stage (records.facts) whose `eval` output exists, in order."""
    found = {}
    for stage in stages:
        for out in stage["outputs"].values():
            if out.get("kind") == "eval" and Path(out["path"]).is_file():
                found[stage["stage"]] = stage_scores(Path(out["path"]))
    return found


def table(scores: Dict[str, Dict[str, float]]) -> Optional[str]:
    """The markdown table of `scores` (rows: task and metric; columns: stages), None when empty."""
    rows = sorted({row for values in scores.values() for row in values})
    if not rows:
        return None
    head = ["task / metric", *scores]
    body = [[row, *(f"{v[row]:.4f}" if row in v else "-" for v in scores.values())] for row in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in [head, *body]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write(pipeline: str, stages: List[Dict[str, Any]], pipeline_dir: Path) -> Optional[str]:
    """Write `<pipeline_dir>/scores.md` of `stages` (records.facts) and return the table (None when no
    eval stage has results)."""
    text = table(collect(stages))
    if text is None:
        return None
    pipeline_dir.mkdir(parents=True, exist_ok=True)
    (pipeline_dir / SCORES_FILE).write_text(f"# pipeline {pipeline}: eval scores\n\n{text}\n", encoding="utf-8")
    return text
