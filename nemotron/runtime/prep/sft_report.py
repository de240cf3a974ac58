"""What an SFT prep read, kept and dropped (`Counts`), the refusal when nothing trainable is left,
and the short terminal table of its report (nemotron/runtime/prep/sft.py writes the report)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence


@dataclass
class Counts:
    """What happened to the conversations of one shard (or, summed, of all)."""

    read: int = 0
    kept: int = 0
    dropped: Dict[str, int] = field(default_factory=lambda: {
        "no_assistant_turn": 0, "too_long": 0, "no_loss_tokens": 0})
    truncated: int = 0
    mask_all_ones: int = 0
    tokens: int = 0
    loss_tokens: int = 0

    def add(self, other: Dict[str, Any]) -> None:
        for key, value in other.items():
            if key == "dropped":
                for reason, n in value.items():
                    self.dropped[reason] += n
            else:
                setattr(self, key, getattr(self, key) + value)


def refuse_broken(counts: Counts, sources: Sequence[str]) -> None:
    if counts.kept == 0:
        raise ValueError(f"data.sources {list(sources)}: no conversation kept ({counts.read} read, "
                         f"dropped {counts.dropped}); nothing to train on")
    if counts.mask_all_ones == counts.kept:
        raise ValueError("every kept sample's loss mask covers all its tokens: the chat template "
                         "marks prompts as answers (check data.chat_template)")


def report_lines(report: Dict[str, Any]) -> List[str]:
    """The short terminal table of a data report."""
    c, share = report["counts"], report["loss_token_share"]
    rows = [("conversations read", c["read"]), ("kept", c["kept"])]
    rows += [(f"dropped: {k.replace('_', ' ')}", v) for k, v in c["dropped"].items()]
    rows += [(f"truncated to {report['seq_length'] + 1} tokens", c["truncated"]),
             ("loss mask empty (dropped)", c["dropped"]["no_loss_tokens"]),
             ("loss mask all ones", c["mask_all_ones"]), ("tokens", c["tokens"]),
             ("loss tokens", f"{c['loss_tokens']} ({share * 100:.1f}%)")]
    for name, s in report["splits"].items():
        rows.append((f"{name}: samples -> bins", f"{s['num_samples']} -> {s['num_bins']} "
                     f"({s['packing_efficiency'] * 100:.1f}% packed)"))
    if "peak_rss_mb" in report:
        rows.append(("peak memory (RSS)", f"{report['peak_rss_mb']} MB"))
    width = max(len(k) for k, _ in rows)
    lines = [f"  {k:<{width}}  {v}" for k, v in rows]
    if len(report.get("sources", ())) > 1 or any(r["asked_share"] is not None for r in report.get("sources", ())):
        from nemotron.runtime.prep.mix import mix_lines

        lines += mix_lines(report["sources"])
    return lines
