"""Progress of a long task (HF import/export, checkpoint averaging, LoRA merging, data prep, tokenizer
training), one helper for all of them (stdlib only).

On an interactive terminal a bar redrawn in place, at most `REDRAW_S` apart::

    export-hf [############..........]  60% 120/200 tensors | 31.2 tensors/s | ETA 0:00:02

Elsewhere (a log file, a Slurm job) a plain line every `NEMOTRON_PROGRESS_INTERVAL_S` seconds (default
30; the first after that long, so a short task prints only its end)::

    export-hf: 120/200 tensors (60%) | 31.2 tensors/s | ETA 0:00:02

and in both forms one closing line: ``export-hf: 200 tensors in 6.4 s (31.2 tensors/s)``. With
``unit="B"`` counts print as bytes (KB, MB, GB). ``total=None`` (unknown) prints no bar, percentage
or ETA. ``rate_text`` gives "rate | ETA" for callers that print their own lines (data prep's
``[k/N]``).

    with Progress("export-hf", total=len(names), unit="tensors") as bar:
        for name in names:
            ...
            bar.update()
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from typing import Any, Callable, Optional, TextIO

INTERVAL_ENV = "NEMOTRON_PROGRESS_INTERVAL_S"
"""Seconds between the plain lines when the stream is not a terminal (default `INTERVAL_S`)."""
INTERVAL_S = 30.0
REDRAW_S = 0.2
"""Seconds between redraws of the terminal bar."""
BAR_WIDTH = 24


def interactive(stream: Any) -> bool:
    """Whether `stream` is a terminal (a bar), not a file or a pipe (plain lines)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def duration(seconds: float) -> str:
    """`h:mm:ss`."""
    return str(datetime.timedelta(seconds=int(max(0.0, seconds))))


def amount(value: float, unit: str) -> str:
    """`1,234 tensors`, or for unit `B` `12.3 MB`."""
    if unit != "B":
        return f"{value:,.0f} {unit}"
    for prefix in ("", "K", "M", "G", "T"):
        if abs(value) < 1000 or prefix == "T":
            return f"{value:.0f} B" if not prefix else f"{value:.1f} {prefix}B"
        value /= 1000.0
    return f"{value} B"  # unreachable


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, INTERVAL_S)))
    except ValueError:
        return INTERVAL_S


class Progress:
    """Counts done work of a task and shows it: a bar on a terminal, plain periodic lines elsewhere."""

    def __init__(
        self,
        what: str,
        total: Optional[float] = None,
        unit: str = "items",
        stream: Optional[TextIO] = None,
        interval_s: Optional[float] = None,
        clock: Callable[[], float] = time.monotonic,
        quiet: bool = False,
    ) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        """Count, print nothing (ranks other than 0)."""
        self.tty = interactive(self.stream)
        self.interval = REDRAW_S if self.tty else (_interval() if interval_s is None else interval_s)
        self.clock = clock
        self.done = 0.0
        self.start = self._shown = clock()
        self._closed = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.close(failed=kind is not None)

    # ---- counting ------------------------------------------------------------------------------

    def update(self, n: float = 1) -> None:
        """`n` more units done; shows the progress if the interval has passed."""
        self.done += n
        now = self.clock()
        if now - self._shown >= self.interval:
            self._shown = now
            self._write(self.bar(now) if self.tty else self.line(now))

    def rate(self, now: Optional[float] = None) -> float:
        """Units per second since the start."""
        spent = (self.clock() if now is None else now) - self.start
        return self.done / spent if spent > 0 else 0.0

    def eta(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left at the rate so far; None without a total or a rate."""
        rate = self.rate(now)
        return None if self.total is None or rate <= 0 else max(0.0, self.total - self.done) / rate

    # ---- text ----------------------------------------------------------------------------------

    def rate_text(self, now: Optional[float] = None) -> str:
        """`31.2 tensors/s | ETA 0:00:02` (no ETA without a total)."""
        rate = self.rate(now)
        speed = amount(rate, self.unit) if self.unit == "B" else f"{rate:,.{0 if rate >= 100 else 1}f} {self.unit}"
        eta = self.eta(now)
        return f"{speed}/s" + ("" if eta is None else f" | ETA {duration(eta)}")

    def eta_text(self, now: Optional[float] = None) -> str:
        """`ETA 0:00:02` (`ETA ?` before any rate or without a total)."""
        eta = self.eta(now)
        return "ETA ?" if eta is None else f"ETA {duration(eta)}"

    def _count(self) -> str:
        if self.total is None:
            return amount(self.done, self.unit)
        if self.unit == "B":
            return f"{amount(self.done, 'B')}/{amount(self.total, 'B')}"
        return f"{self.done:,.0f}/{self.total:,.0f} {self.unit}"

    def _fraction(self) -> Optional[float]:
        return None if not self.total else min(1.0, self.done / self.total)

    def line(self, now: Optional[float] = None) -> str:
        """The plain form: `what: 120/200 tensors (60%) | 31.2 tensors/s | ETA 0:00:02`."""
        fraction = self._fraction()
        share = "" if fraction is None else f" ({fraction:.0%})"
        return f"{self.what}: {self._count()}{share} | {self.rate_text(now)}"

    def bar(self, now: Optional[float] = None) -> str:
        """The terminal form: `what [####......]  60% 120/200 tensors | 31.2 tensors/s | ETA 0:00:02`."""
        fraction = self._fraction()
        if fraction is None:
            return f"{self.what} {self._count()} | {self.rate_text(now)}"
        filled = int(round(fraction * BAR_WIDTH))
        drawn = "#" * filled + "." * (BAR_WIDTH - filled)
        return f"{self.what} [{drawn}] {fraction:4.0%} {self._count()} | {self.rate_text(now)}"

    def summary(self, now: Optional[float] = None) -> str:
        """`what: 200 tensors in 6.4 s (31.2 tensors/s)`."""
        now = self.clock() if now is None else now
        speed = self.rate_text(now).split(" | ")[0]
        return f"{self.what}: {amount(self.done, self.unit)} in {now - self.start:.1f} s ({speed})"

    # ---- output --------------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if self.quiet:
            return
        try:
            if self.tty:
                self.stream.write("\r\x1b[2K" + text)  # back to the line's start, clear it, redraw
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream never fails the task

    def close(self, failed: bool = False) -> None:
        """End the bar's line; the closing summary unless the task failed (its error says enough)."""
        if self._closed:
            return
        self._closed = True
        if self.tty:
            self._write(self.bar())
            self._write_raw("\n")
        if not failed:
            self._write_raw(self.summary() + "\n")

    def _write_raw(self, text: str) -> None:
        if self.quiet:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass
