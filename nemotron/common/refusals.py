"""A stage refusing its input says why in one line: `error: <reason>` on stderr, exit status
`exit_codes.REFUSED` (65). The launchers recognise the line in the stage's output (`refusal_in`) and
end the command with it on their own stderr, beside the log's path (standard library only).

Reasons name what to fix: the key, the file:line or path, the value and what would be right.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Optional

from nemotron.common.exit_codes import REFUSED

PREFIX = "error: "
"""How a refusal line starts."""
_RANK_PREFIX = re.compile(r"^\[(?:rank|default)\d*\]:\s?")


def refuse(reason: str) -> int:
    """Say `error: <reason>` on stderr (rank 0 only, under torchrun) and return the exit status to end with."""
    if os.environ.get("RANK", "0") == "0":
        first = " ".join(str(reason).split("\n")[0].split()) or "refused (no reason given)"
        print(PREFIX + first, file=sys.stderr, flush=True)
    return REFUSED


def refusal_in(line: str) -> Optional[str]:
    """The reason when `line` (of a stage's output, maybe with torchrun's `[rankN]:`) is a refusal."""
    text = _RANK_PREFIX.sub("", line.rstrip("\n"))
    return text[len(PREFIX) :] if text.startswith(PREFIX) else None
