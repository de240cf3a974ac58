"""The pictures of runs: `<run_dir>/loss.png` of one run, one figure across runs (`compare`).

matplotlib is imported on first use (the training process pays for it only when it draws, at the
end), through `matplotlib.figure.Figure` and the Agg canvas: no pyplot state, no display needed.
A picture has one panel per kind of figure the run logged, in `PANELS` order: loss and validation
loss, learning rate, then the stage's own (GRPO's reward, DPO's preference accuracy and reward
margin). Every series has a colour of its own in the figure, and the PNG carries what it shows in
its `nemotron.series` text chunk (JSON: panel, label, colour, points), so a reader (or a test) can
check a picture without trusting its file name.
"""

from __future__ import annotations

import fnmatch
import json
import math
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

Series = List[Tuple[int, float]]

PICTURE = "loss.png"
"""The run directory's picture, written when the run ends whatever the tracker."""
PANELS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("loss", ("loss", "val_loss")),
    ("learning rate", ("lr",)),
    ("reward (GRPO)", ("reward_mean", "reward/*")),
    ("preference accuracy (DPO)", ("rewards/accuracies",)),
    ("reward margin (DPO)", ("rewards/margins", "rewards/chosen", "rewards/rejected")),
)
"""(panel title, metric keys or fnmatch patterns it draws), in the order the panels stack."""
PLOTTED = tuple(key for _, keys in PANELS for key in keys)
SERIES_KEY = "nemotron.series"
"""PNG text chunk listing the series drawn: [{"panel", "label", "color", "points"}, ...]."""
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#bcbd22", "#7f7f7f")


def load_pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _figure(panels: int, width: float = 7.0) -> Tuple[Any, List[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 1.2 + 2.4 * panels), dpi=100)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes)


def warm() -> None:
    """Import matplotlib and draw one empty figure (fonts, the Agg canvas): a second or more, paid ahead."""
    fig, _ = _figure(1, width=1.0)
    fig.canvas.draw()


def plotted(key: str) -> bool:
    """Whether some panel draws metric `key`."""
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in PLOTTED)


def series_of(records: Iterable[Mapping[str, Any]]) -> Dict[str, Series]:
    """{metric: [(step, value), ...]} from step records, the last value of each step (a resumed run
    repeats steps), NaN left out; records without a step (a status line) are skipped."""
    by_key: Dict[str, Dict[int, float]] = {}
    for record in records:
        if "step" not in record:
            continue
        step = int(record["step"])
        for key, value in record.items():
            if key in ("step", "time") or not isinstance(value, (int, float)) or math.isnan(value):
                continue
            by_key.setdefault(key, {})[step] = float(value)
    return {key: sorted(points.items()) for key, points in by_key.items()}


def read_series(path: Path) -> Dict[str, Series]:
    """`series_of` the complete JSON lines of a metrics file (a torn or foreign line is skipped)."""
    records = []
    with Path(path).open("rb") as lines:
        for line in lines:
            try:
                record = json.loads(line) if line.endswith(b"\n") else None
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return series_of(records)


def layout(keys: Iterable[str]) -> List[Tuple[str, List[str]]]:
    """(panel title, the keys of `keys` it draws) for the panels that draw any; a pattern's keys sorted."""
    keys = list(keys)
    out = []
    for title, patterns in PANELS:
        drawn: List[str] = []
        for pattern in patterns:
            drawn += sorted(k for k in keys if fnmatch.fnmatchcase(k, pattern) and k not in drawn)
        if drawn:
            out.append((title, drawn))
    return out


def _style(key: str) -> Dict[str, Any]:
    return {"marker": "o", "markersize": 4} if key == "val_loss" else {}


def run_figure(series: Mapping[str, Series], title: str) -> Optional[Any]:
    """The matplotlib Figure of one run's series (one panel per `layout` row); None with nothing to draw."""
    panels = layout(k for k, points in series.items() if points)
    if not panels:
        return None
    fig, axes = _figure(len(panels))
    shown = []
    for ax, (name, keys) in zip(axes, panels):
        for key in keys:
            color = PALETTE[len(shown) % len(PALETTE)]
            ax.plot(*zip(*series[key]), label=key, color=color, linewidth=1.2, **_style(key))
            shown.append({"panel": name, "label": key, "color": color, "points": len(series[key])})
        _finish_axes(ax, name, "lr" in keys)
    axes[-1].set_xlabel("step")
    fig.suptitle(title)
    fig.tight_layout()
    fig.nemotron_series = shown
    return fig


def compare_figure(runs: Mapping[str, Mapping[str, Series]], title: str, extra: Sequence[str] = ()) -> Optional[Any]:
    """One figure across runs: a colour per run, the panels of `layout` (plus a panel per key of
    `extra` no panel draws), each panel's first series (a run's validation loss dashed beside its loss).
    None with nothing to draw."""
    keys = {k for series in runs.values() for k, points in series.items() if points}
    panels = layout(keys) + [(key, [key]) for key in extra if key in keys and not plotted(key)]
    if not panels:
        return None
    fig, axes = _figure(len(panels), width=8.0)
    colors = {run: PALETTE[i % len(PALETTE)] for i, run in enumerate(runs)}
    shown = []
    for ax, (name, panel_keys) in zip(axes, panels):
        panel_keys = [k for i, k in enumerate(panel_keys) if i == 0 or k == "val_loss"]  # one line a run
        for run, series in runs.items():
            for key in panel_keys:
                if not series.get(key):
                    continue
                label = run if len(panel_keys) == 1 or key == panel_keys[0] else f"{run}: {key}"
                line = "--" if key != panel_keys[0] else "-"
                ax.plot(*zip(*series[key]), line, label=label, color=colors[run], linewidth=1.2)
                shown.append({"panel": name, "label": label, "color": colors[run], "points": len(series[key])})
        _finish_axes(ax, name, "lr" in panel_keys)
    axes[-1].set_xlabel("step")
    fig.suptitle(title)
    fig.tight_layout()
    fig.nemotron_series = shown
    return fig


def _finish_axes(ax: Any, name: str, log_scale: bool) -> None:
    ax.set_ylabel(name)
    if log_scale and all(v > 0 for line in ax.get_lines() for v in line.get_ydata()):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def save(fig: Any, out: Path) -> Path:
    """Write `fig` as PNG to `out` (through a temporary file: a reader never sees half a picture)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    fig.savefig(tmp, format="png", metadata={SERIES_KEY: json.dumps(getattr(fig, "nemotron_series", []))})
    tmp.replace(out)
    return out


def write_run_picture(series: Mapping[str, Series], out: Path, title: str) -> Optional[Path]:
    """Draw one run's `series` to `out`; None when there is nothing to draw. Never raises: a failure to
    draw is one warning line on stderr, never a failed run."""
    try:
        fig = run_figure(series, title)
        return None if fig is None else save(fig, out)
    except Exception as exc:  # noqa: BLE001 - a picture never fails a run
        print(f"warning: could not draw {out}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return None


def picture_title(cfg: Any) -> str:
    """`<recipe> / <run directory name>` of a run config."""
    recipe = cfg.get("recipe") or {}
    name = recipe.get("name") if hasattr(recipe, "get") else None
    return " / ".join(str(p) for p in (name, Path(str(cfg.run_dir)).name) if p)


def table(rows: Sequence[Dict[str, str]], columns: Sequence[str]) -> str:
    """A plain-text table with a header line."""
    widths = [max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns]
    line = lambda cells: "  ".join(str(v).ljust(w) for v, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line("-" * w for w in widths),
                      *(line(r.get(c, "") for c in columns) for r in rows)])
