"""How many samples each source gives the final blend, which ones (seeded), and the mix report.

- Unweighted sources: every kept sample `epochs` times (default once; a fraction samples the rest).
- Weighted sources (`{path, weight, epochs}` or a blend file): source i gets the share
  p_i = w_i / sum(w) of the blend. The blend is as large as it can be without taking any source more
  than its `epochs` passes (default 1): T = min_i(epochs_i * kept_i / p_i) over sources with w_i > 0,
  and source i gives round(p_i * T) samples. So the scarcest source (relative to its weight) is used
  exactly `epochs` times and the others are subsampled to the asked mix; weight 0 leaves a source out.

A source's n samples are q = n // kept full passes plus n % kept samples drawn without replacement
by a generator seeded with (data.seed, source index): the same inputs give the same selection.
Copies of one sample land in the same train/valid/test split (the split is a hash of file and line).
"""

from __future__ import annotations

import resource
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from nemotron.common.data_sources import Source


def target_counts(kept: Sequence[int], sources: Sequence[Source]) -> List[int]:
    """Samples each source gives the blend (module docstring)."""
    if not sources or sources[0].weight is None:
        return [int(round(k * s.epochs)) for k, s in zip(kept, sources)]
    total_w = sum(s.weight for s in sources)
    shares = [s.weight / total_w for s in sources]
    limits = [s.epochs * k / p for k, s, p in zip(kept, sources, shares) if p > 0]
    size = min(limits) if limits else 0.0
    return [min(int(round(p * size)), int(s.epochs * k + 1e-9) if p else 0) for k, s, p in zip(kept, sources, shares)]


def select(kept: int, n: int, seed: int, source_index: int) -> np.ndarray:
    """Indices (0..kept-1, sorted, with repeats) of the n samples one source gives."""
    if kept == 0 or n == 0:
        return np.zeros(0, np.int64)
    full, rest = divmod(n, kept)
    rng = np.random.default_rng([seed, source_index])
    extra = np.sort(rng.choice(kept, size=rest, replace=False)) if rest else np.zeros(0, np.int64)
    return np.sort(np.concatenate([np.repeat(np.arange(kept), full), extra]), kind="stable")


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its finished worker processes, the larger, in MB."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return round(max(own, kids) / 2**20, 1)


def source_rows(sources: Sequence[Source], counts: Sequence[Dict[str, Any]], selected: Sequence[int],
                selected_tokens: Sequence[int]) -> List[Dict[str, Any]]:
    """The report's per-source table: read, kept, dropped and why, tokens, asked and achieved share."""
    total, total_tokens = max(1, sum(selected)), max(1, sum(selected_tokens))
    weights = [s.weight for s in sources]
    asked: List[Optional[float]] = [None] * len(sources)
    if weights and weights[0] is not None:
        asked = [w / sum(weights) for w in weights]
    rows = []
    for s, c, n, t, a in zip(sources, counts, selected, selected_tokens, asked):
        rows.append({"name": s.name, "where": s.where, "weight": s.weight, "epochs": s.epochs,
                     "read": c["read"], "kept": c["kept"], "dropped": dict(c["dropped"]),
                     "tokens": c["tokens"], "selected": n, "selected_tokens": t,
                     "asked_share": None if a is None else round(a, 6),
                     "share": round(n / total, 6), "token_share": round(t / total_tokens, 6)})
    return rows


def mix_lines(rows: Sequence[Dict[str, Any]], unit: str = "conversations") -> List[str]:
    """The per-source table on the terminal."""
    head = f"  {'source':<24} {'read':>8} {'kept':>8} {'dropped':>8} {'tokens':>10} {unit[:8]:>8}  achieved (asked)"
    out = [head]
    for r in rows:
        asked = "natural" if r["asked_share"] is None else f"{r['asked_share'] * 100:.1f}%"
        why = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in r["dropped"].items() if v)
        out.append(f"  {r['name'][-24:]:<24} {r['read']:>8} {r['kept']:>8} {sum(r['dropped'].values()):>8} "
                   f"{r['tokens']:>10} {r['selected']:>8}  {r['share'] * 100:.1f}% ({asked})"
                   + (f"  dropped: {why}" if why else ""))
    return out
