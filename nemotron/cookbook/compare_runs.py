"""`nemotron compare RUN RUN... [--plot [PNG]]`: any runs side by side, read from their run directories.

The metrics table comes from each run's `metrics.jsonl` (every tracker but `none` writes one),
the config diff from the resolved `config.yaml`s (the keys whose values differ, paths of the runs
themselves left out), and `--plot` draws one figure across the runs with the tracking package's own
figure (`tracking.compare.write_figure`, the same one a sweep's `compare` draws). For a sweep's members
from the MLflow store, `nemotron tracking compare <parent run | multirun dir>` stays.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional

from nemotron.cookbook.runs import CONFIG, Run, metrics_file, resolve
from nemotron.launchers.job_records import JobsError

COLUMNS = ("run", "recipe", "state", "steps", "final loss", "min val_loss", "tokens/s")
OWN_KEYS = ("run_dir", "recipe.script", "hydra")
"""Keys that always differ between runs (their own paths); left out of the diff."""
DIFF_WIDTH = 40


def flatten(node: Any, prefix: str = "") -> Dict[str, Any]:
    """{dotted key: leaf value} of a loaded YAML mapping (lists are leaves)."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: Dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def config_of(run: Run) -> Dict[str, Any]:
    import yaml

    try:
        loaded = yaml.load((run.run_dir / CONFIG).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    except (OSError, yaml.YAMLError) as err:
        raise JobsError(f"{run.name}: cannot read {CONFIG} ({err})") from None
    return flatten(loaded or {})


def config_diff(runs: List[Run]) -> List[Dict[str, str]]:
    """One row per key whose value differs between the runs (missing in a run shows as '-')."""
    configs = [config_of(r) for r in runs]
    keys = sorted({k for c in configs for k in c})
    rows = []
    for key in keys:
        if any(key == own or key.startswith(own + ".") for own in OWN_KEYS):
            continue
        values = [short(c.get(key, "-")) for c in configs]
        if len(set(values)) > 1:
            rows.append({"key": key, **{label(r, i): v for i, (r, v) in enumerate(zip(runs, values, strict=True))}})
    return rows


def short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= DIFF_WIDTH else text[: DIFF_WIDTH - 3] + "..."


def label(run: Run, i: int) -> str:
    """A column name for the run: its index and the last part of its name."""
    return f"{i}: {run.name.rsplit('/', 1)[-1]}"


def fmt(value: Optional[float], spec: str = ".4f") -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def metrics_row(run: Run, series: Dict[str, list]) -> Dict[str, str]:
    loss, vals = series.get("loss", []), [v for _, v in series.get("val_loss", [])]
    speed = [v for _, v in series.get("tokens_per_s", [])][1:]  # the first step pays for compilation
    return {
        "run": run.name,
        "recipe": run.recipe,
        "state": run.state,
        "steps": str(loss[-1][0]) if loss else run.steps,
        "final loss": fmt(loss[-1][1] if loss else None),
        "min val_loss": fmt(min(vals) if vals else None),
        "tokens/s": fmt(sum(speed) / len(speed) if speed else None, ",.0f"),
    }


def compare(targets: List[str], root: Path, plot: Optional[str], metric: str = "loss") -> int:
    """Print the metrics table and the config diff of `targets`; with `plot`, write one figure."""
    from nemotron.tracking.plots import read_series, table

    runs = [resolve(t, root) for t in targets]
    if len({r.run_dir for r in runs}) < 2:
        raise JobsError("compare needs two or more different runs (see `nemotron jobs`)")
    files = {r.name: metrics_file(r.run_dir) for r in runs}
    series = {name: read_series(path) if path.is_file() else {} for name, path in files.items()}
    print(table([metrics_row(r, series[r.name]) for r in runs], COLUMNS))
    diff = config_diff(runs)
    print()
    if diff:
        print(f"config differences ({len(diff)} keys):")
        print(table(diff, ["key", *(label(r, i) for i, r in enumerate(runs))]))
    else:
        print("configs: identical (apart from the runs' own paths)")
    if plot is not None:
        return write_plot(series, Path(plot), metric)
    return 0


def write_plot(series: Dict[str, Dict[str, list]], out: Path, metric: str) -> int:
    from nemotron.tracking.compare import write_figure

    if write_figure(series, out, f"{len(series)} runs", metric) is None:
        raise JobsError("no run has metrics to plot (tracker=none writes no metrics.jsonl)")
    print(f"\nplot: {out}")
    return 0
