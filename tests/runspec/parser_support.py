"""What the runspec parser tests share: writing a recipe script and expecting its one-line error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nemotron.runspec.parser import RunspecError, parse_file


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def expect_error(script: Path, line: int, key: str, *fragments: str, root: Path | None = None) -> str:
    """Parse `script`, expecting a one-line RunspecError at file:line for key."""
    with pytest.raises(RunspecError) as caught:
        parse_file(script, root)
    err, msg = caught.value, str(caught.value)
    assert msg.startswith(f"{script}:{line}: {key}: "), msg
    assert "\n" not in msg
    assert (err.path, err.line, err.key) == (script, line, key)
    for fragment in fragments:
        assert fragment in msg, msg
    return msg
