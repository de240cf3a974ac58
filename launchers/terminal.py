"""What a local run shows on the terminal: its progress and summary lines, not its tracebacks.

The training process's combined output goes to `train.log` whole; the terminal gets every line except
Python tracebacks (of any rank: `[rank0]: Traceback ...`), torch.distributed.elastic's log lines and its
ChildFailedError report. The exception line that ends a traceback is kept as the run's `reason`,
which the launcher's one-line error names beside the log path. A stage's own refusal line
(`error: <reason>`, nemotron.common.refusals) is kept as `refusal` and not shown: the launcher ends
with it on stderr.
"""

from __future__ import annotations

import re
from typing import Optional

from nemotron.common.refusals import refusal_in

RANK_PREFIX = re.compile(r"^\[(?:rank|default)\d*\]:\s?")
ELASTIC_LOG = re.compile(r"^[WEI]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ .*torch/distributed/elastic/")
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
CHILD_FAILED = "torch.distributed.elastic.multiprocessing.errors.ChildFailedError"


class TerminalFilter:
    """Feed it each line of a run's output; `show(line)` says whether the terminal gets it."""

    def __init__(self) -> None:
        self.in_traceback = False
        self.report_rules = 0  # '=' rules seen inside torchrun's ChildFailedError report
        self.in_report = False
        self.reason: Optional[str] = None
        """The first exception line of a traceback (a rank's own error, not torchrun's summary)."""
        self.refusal: Optional[str] = None
        """The reason of the stage's first `error: ...` line, when it refused its input."""

    def show(self, line: str) -> bool:
        text = RANK_PREFIX.sub("", line.rstrip("\n"))
        if self.in_report:
            self.report_rules += text.startswith("=" * 20)
            self.in_report = self.report_rules < 2
            return False
        if text.startswith("Traceback (most recent call last):") or text.startswith(CHAINED):
            self.in_traceback = True
            return False
        if self.in_traceback:
            return self._traceback_line(text)
        refused = refusal_in(text)
        if refused is not None:
            self.refusal = self.refusal or refused
            return False
        return not ELASTIC_LOG.match(text)

    def _traceback_line(self, text: str) -> bool:
        if not text or text[0].isspace():
            return False  # a frame, its source line, a caret line
        self.in_traceback = False
        if text.startswith(CHILD_FAILED):
            self.in_report, self.report_rules = True, 0
        elif self.reason is None:
            self.reason = text
        return False
