"""Parsed override lines of a sweep, each distinct line parsed once, swept numbers without the parser.

Hydra's override parser (ANTLR) takes ~0.2 ms a line, and a sweep of N values of one key has N distinct
lines. A line `key=<number>` whose key was already parsed as a plain number (`optim.lr=0.0001`) is
built from that parse with the new number: the lexer's own INT and FLOAT rules (hydra/grammar/
OverrideLexer.g4) are matched in full and converted as its visitor converts them (`int(text)`,
`float(text)`), so the Override is the one the parser would return (tests/launchers/test_override_lines.py
compares them over a corpus of lines). Anything else goes to the parser.
"""

from __future__ import annotations

import re
from typing import Dict, List, Sequence, Union

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, ValueType

from nemotron.config.hydra_compat import with_value

_DIGITS = r"[0-9](?:_?[0-9])*"
_INT_UNSIGNED = r"(?:0|[1-9](?:_?[0-9])*)"
_POINT_FLOAT = rf"(?:{_INT_UNSIGNED}\.|{_INT_UNSIGNED}?\.{_DIGITS})"
_EXPONENT_FLOAT = rf"(?:(?:{_POINT_FLOAT}|{_INT_UNSIGNED})[eE][+-]?{_DIGITS})"
INT = re.compile(rf"[+-]?{_INT_UNSIGNED}")
"""OverrideLexer's INT token."""
FLOAT = re.compile(rf"[+-]?(?:{_EXPONENT_FLOAT}|{_POINT_FLOAT}|[Ii][Nn][Ff]|[Nn][Aa][Nn])")
"""OverrideLexer's FLOAT token."""


def number(text: str) -> Union[int, float, None]:
    """The value Hydra's parser gives `text` when it is one INT or FLOAT token; else None."""
    if INT.fullmatch(text):
        return int(text)
    if FLOAT.fullmatch(text):
        return float(text)
    return None


class OverrideLines:
    """Hydra's parse of override lines, cached per line; swept numbers reuse their key's parse."""

    def __init__(self) -> None:
        self.parser = OverridesParser.create()
        self.parsed: Dict[str, Override] = {}
        self.numeric: Dict[str, Override] = {}
        """The text before `=` -> a parsed line of it whose value is a plain number."""

    def parse(self, lines: Sequence[str]) -> List[Override]:
        """The Override of each line, as `OverridesParser.parse_overrides` returns it."""
        for line in lines:
            if line not in self.parsed:
                self.parsed[line] = self._from_number(line) or self._from_parser(line)
        return [self.parsed[line] for line in lines]

    def _from_number(self, line: str) -> Union[Override, None]:
        key, _, text = line.partition("=")
        template = self.numeric.get(key)
        value = number(text) if template is not None else None
        return None if value is None else with_value(template, value, line)

    def _from_parser(self, line: str) -> Override:
        override = self.parser.parse_overrides([line])[0]
        key, _, text = line.partition("=")
        value = override.value() if override.value_type == ValueType.ELEMENT else None
        if number(text) is not None and type(value) in (int, float):  # bool is an int: not a number here
            self.numeric.setdefault(key, override)
        return override
