"""Eval runs side by side: one table (a row per task and metric, a column per run) and one bar figure.

    python -m nemotron.tracking compare-evals RUN [RUN ...] [--uri URI] [--out PNG]

A RUN is an eval run directory (its `eval_results.json`), a results JSON file, or an MLflow run id
(its `eval/<task>/<metric>` metrics, from `--uri` or the usual tracking URI). Each column is named
after the run and, below it, the checkpoint it evaluated (the results file's `nemotron.checkpoint`,
else `checkpoint.pretrained` in the run's config.yaml; a run id: its `nemotron.inputs` tag). The figure has one panel per task and metric and
a bar per run, a colour per run; its PNG lists what it shows (`plots.SERIES_KEY`).

`scores_of_results`, `load_scores`, `eval_table` and `eval_figure` are what other front ends (the
pipeline summary, `nemotron compare`) build on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from nemotron.common.eval_tasks import RESULTS_FILE
from nemotron.tracking.plots import PALETTE, save


@dataclass
class EvalScores:
    """One eval run's scores: `<task> <metric>` -> value."""

    label: str
    checkpoint: str = ""
    scores: Dict[str, float] = field(default_factory=dict)


def scores_of_results(results: Dict[str, Any]) -> Dict[str, float]:
    """`<task> <metric>` -> value of lm-eval's results (`<metric>_<filter>` for filters other than
    `none`; stderr and non-numbers left out): the names the tracker logs as `eval/<task>/<metric>`."""
    out = {}
    for task, values in (results.get("results") or {}).items():
        for key, value in values.items():
            metric, _, filt = key.partition(",")
            if not filt or "_stderr" in metric or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            out[f"{task} {metric if filt == 'none' else f'{metric}_{filt}'}"] = float(value)
    return out


def _checkpoint_of(run_dir: Path) -> str:
    config = run_dir / "config.yaml"
    if not config.is_file():
        return ""
    from omegaconf import OmegaConf

    value = (OmegaConf.load(config).get("checkpoint") or {}).get("pretrained")
    return str(value or "")


def _from_file(path: Path) -> EvalScores:
    run_dir = path.parent
    label = run_dir.name if path.name == RESULTS_FILE else path.stem
    results = json.loads(path.read_text(encoding="utf-8"))
    checkpoint = (results.get("nemotron") or {}).get("checkpoint") or _checkpoint_of(run_dir)
    return EvalScores(label, checkpoint, scores_of_results(results))


def _from_mlflow(client: Any, run_id: str) -> EvalScores:
    run = client.get_run(run_id)
    scores = {}
    for key, value in run.data.metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "eval" and "_stderr" not in parts[2]:
            scores[f"{parts[1]} {parts[2]}"] = float(value)
    checkpoint = run.data.tags.get("nemotron.inputs", "")
    return EvalScores(run.info.run_name or run_id[:8], checkpoint, scores)


def load_scores(sources: Sequence[str], uri: Optional[str] = None) -> List[EvalScores]:
    """The scores of each source (run directory, results JSON or MLflow run id), in order; a source
    with no eval metrics raises ValueError naming it."""
    out, client = [], None
    for source in sources:
        path = Path(source)
        if path.is_dir():
            path = path / RESULTS_FILE
            if not path.is_file():
                raise ValueError(f"{source}: no {RESULTS_FILE} (not an eval run directory)")
        if path.is_file():
            found = _from_file(path)
        else:
            if client is None:
                from nemotron.tracking.settings import tracking_uri
                from nemotron.tracking.store import connect

                client = connect(uri or tracking_uri({}))
            found = _from_mlflow(client, source)
        if not found.scores:
            raise ValueError(f"{source}: no eval metrics (an eval run's directory, results JSON or run id)")
        out.append(found)
    labels = [s.label for s in out]
    for i, s in enumerate(out):  # two runs of one name (two files called the same): number them
        if labels.count(s.label) > 1:
            s.label = f"{i + 1}: {s.label}"
    return out


def eval_table(runs: Sequence[EvalScores]) -> str:
    """Rows `<task> <metric>`, a column per run (its checkpoint in the second header line)."""
    rows = sorted({row for run in runs for row in run.scores})
    head = [["task / metric", *(r.label for r in runs)]]
    if any(r.checkpoint for r in runs):
        head.append(["checkpoint", *(_short(r.checkpoint) or "-" for r in runs)])
    body = [[row, *(f"{r.scores[row]:.4f}" if row in r.scores else "-" for r in runs)] for row in rows]
    lines = [*head, *body]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head[0]))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    text.insert(len(head), "  ".join("-" * w for w in widths))
    return "\n".join(text)


def _short(path: str, keep: int = 48) -> str:
    return path if len(path) <= keep else "..." + path[-(keep - 3) :]


def eval_figure(runs: Sequence[EvalScores], title: str) -> Optional[Any]:
    """Bars: a panel per `<task> <metric>`, a bar per run in the run's colour; None with no scores."""
    from matplotlib.figure import Figure

    rows = sorted({row for run in runs for row in run.scores})
    if not rows:
        return None
    cols = min(3, len(rows))
    nrows = -(-len(rows) // cols)
    fig = Figure(figsize=(3.4 * cols, 1.2 + 2.6 * nrows), dpi=100)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    colors = {run.label: PALETTE[i % len(PALETTE)] for i, run in enumerate(runs)}
    shown = []
    for ax, row in zip(axes, rows, strict=False):
        for i, run in enumerate(runs):  # bar i is run i (numbered in the legend), absent where it has no score
            if row in run.scores:
                ax.bar(i, run.scores[row], color=colors[run.label], width=0.7)
                shown.append({"panel": row, "label": run.label, "color": colors[run.label], "points": 1})
        ax.set_xticks(range(len(runs)), [str(i + 1) for i in range(len(runs))], fontsize=8)
        ax.set_title(row, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(rows) :]:
        ax.set_axis_off()
    from matplotlib.patches import Patch

    handles = [Patch(color=colors[r.label]) for r in runs]
    fig.legend(handles, [f"{i + 1}: {r.label}" for i, r in enumerate(runs)], loc="lower center",
               ncol=min(len(runs), 3), fontsize=8)  # fmt: skip
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(runs) // 3), 1, 1))
    fig.nemotron_series = shown
    return fig


def write_eval_figure(runs: Sequence[EvalScores], out: Path, title: str = "eval scores") -> Optional[Path]:
    """`eval_figure` of `runs` saved to `out`; None when there is nothing to draw."""
    fig = eval_figure(runs, title)
    return None if fig is None else save(fig, out)
