"""Loss-curve PNGs for people without the MLflow UI (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

Series = List[Tuple[int, float]]


def load_pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def warm() -> None:
    """Import pyplot and draw one empty figure (fonts, the Agg canvas): a second or more, paid ahead."""
    plt = load_pyplot()
    fig, _ = plt.subplots(figsize=(1, 1), dpi=10)
    fig.canvas.draw()
    plt.close(fig)


def loss_curve(loss: Series, out: Path, title: str, val_loss: Optional[Series] = None) -> Optional[Path]:
    """Training loss (and validation loss as markers) against step, saved to `out`; None without data."""
    if not loss and not val_loss:
        return None
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if loss:
        ax.plot(*zip(*loss), label="loss", linewidth=1.2)
    if val_loss:
        ax.plot(*zip(*val_loss), "o-", label="val_loss", markersize=4)
    ax.set(xlabel="step", ylabel="loss", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def compare_curves(curves: Dict[str, Series], out: Path, title: str, metric: str = "loss") -> Optional[Path]:
    """One line per sweep member, saved to `out`; None when no member has data."""
    curves = {name: series for name, series in curves.items() if series}
    if not curves:
        return None
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for name, series in curves.items():
        ax.plot(*zip(*series), label=name, linewidth=1.2)
    ax.set(xlabel="step", ylabel=metric, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def table(rows: Sequence[Dict[str, str]], columns: Sequence[str]) -> str:
    """A plain-text table with a header line."""
    widths = [max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns]
    line = lambda cells: "  ".join(str(v).ljust(w) for v, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line("-" * w for w in widths),
                      *(line(r.get(c, "") for c in columns) for r in rows)])
