"""Compare the members of a sweep from the tracking store: a table and one figure across them.

    python -m nemotron.tracking compare <parent run id | multirun dir> [--uri URI] [--metric loss] [--out PNG]

The members are the runs tagged `mlflow.parentRunId=<parent>`; a multirun directory is read for the
parent id its members recorded (`<member>/tracking/state.json`). The sweep callback logs the same
table and plot to the parent run when the sweep ends.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from nemotron.tracking.plots import compare_figure, plotted, save, table

COLUMNS = ("run", "status", "overrides", "steps", "final loss", "min val_loss", "tokens/s")


def parent_from_dir(path: Path) -> Tuple[Optional[str], Optional[str]]:
    """(parent run id, tracking URI) recorded by the members of the multirun directory `path`."""
    from nemotron.tracking.buffer import RunFiles

    for state_file in sorted(path.glob("*/tracking/state.json")):
        state = json.loads(state_file.read_text(encoding="utf-8"))
        if state.get("parent_run_id"):
            return state["parent_run_id"], state.get("uri")
    for state_file in sorted(path.glob("*/tracking/state.json")):
        run_id = RunFiles(state_file.parent.parent).run_id
        if run_id:
            return None, json.loads(state_file.read_text(encoding="utf-8")).get("uri")
    return None, None


def _fmt(value: Optional[float], spec: str = ".4f") -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def members(client: Any, parent_run_id: str) -> List[Any]:
    """The child runs of `parent_run_id`, in member order."""
    parent = client.get_run(parent_run_id)
    runs = client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=1000)
    return sorted(runs, key=lambda r: (int(r.data.tags.get("nemotron.sweep.member", 0) or 0), r.info.start_time))


def histories(client: Any, run: Any, metric: str = "loss") -> Dict[str, list]:
    """{key: [(step, value), ...]} of the run's metrics a picture draws (`plots.layout`) and `metric`."""
    keys = [k for k in run.data.metrics if plotted(k) or k == metric]
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)) for k in keys}


def summarize(client: Any, parent_run_id: str, metric: str = "loss") -> Tuple[List[Dict[str, str]], Dict[str, dict]]:
    """(table rows, {run name: {key: [(step, value), ...]}}) of the sweep's members."""
    rows, runs = [], {}
    for run in members(client, parent_run_id):
        name = run.info.run_name or run.info.run_id[:8]
        series = histories(client, run, metric)
        history, vals = series.get(metric, []), [v for _, v in series.get("val_loss", [])]
        speed = [m.value for m in client.get_metric_history(run.info.run_id, "tokens_per_s")][1:]
        rows.append({"run": name, "status": run.info.status,
                     "overrides": run.data.tags.get("nemotron.sweep.overrides", ""),
                     "steps": str(history[-1][0]) if history else "0",
                     "final loss": _fmt(run.data.metrics.get("loss")),
                     "min val_loss": _fmt(min(vals) if vals else None),
                     "tokens/s": _fmt(sum(speed) / len(speed) if speed else None, ",.0f")})
        runs[name] = series
    return rows, runs


def write_figure(runs: Dict[str, dict], out: Path, title: str, metric: str = "loss") -> Optional[Path]:
    """One figure across `runs` (`plots.compare_figure`) saved to `out`; None when no run has data."""
    fig = compare_figure(runs, title, extra=(metric,))
    return None if fig is None else save(fig, out)


def log_summary(uri: str, parent_run_id: str, metric: str = "loss") -> str:
    """Log `compare.txt` and `compare_<metric>.png` to the parent run; returns the table text."""
    from nemotron.tracking.store import connect

    client = connect(uri)
    rows, runs = summarize(client, parent_run_id, metric)
    text = table(rows, COLUMNS)
    client.log_text(parent_run_id, text + "\n", "compare.txt")
    with tempfile.TemporaryDirectory() as tmp:
        png = write_figure(runs, Path(tmp) / f"compare_{metric}.png", f"sweep {parent_run_id[:8]}", metric)
        if png is not None:
            client.log_artifact(parent_run_id, str(png))
    return text
