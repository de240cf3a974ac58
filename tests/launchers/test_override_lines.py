"""launchers/override_lines.py: a swept number's Override built from its key's parse is the parser's own."""

from __future__ import annotations

import math

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from nemotron.launchers.override_lines import OverrideLines, number

TEXTS = [
    "0", "7", "-3", "+12", "1_000", "00", "01", "1__0", "1_", "_1",
    "0.5", ".5", "5.", "-.5", "1e-4", "1E+4", "3.0e-05", "1.e3", ".5e2", "1e", "e5", "1e4.0", "1_0.0_1", "1.2.3",
    "inf", "-INF", "nan", "NaN", "infinity", "0x10", "1e-4abc", " 1", "1 ", "true", "null", "abc", "'1'", "1,2",
    "[1]", "${x}", "",
]  # fmt: skip
"""Value texts: numbers in each of the lexer's forms, near-misses, and values that are not one number."""


def same(a, b) -> bool:
    """Two Overrides equal, a NaN value equal to a NaN value."""
    if isinstance(a.value(), float) and math.isnan(a.value()):
        return isinstance(b.value(), float) and math.isnan(b.value()) and a.input_line == b.input_line
    return a == b and type(a.value()) is type(b.value())


@pytest.mark.parametrize("key", ["optim.lr", "+train.seed", "++model.dropout"])
def test_each_line_parses_as_hydra_parses_it_after_a_number_of_its_key(key: str) -> None:
    parser, lines = OverridesParser.create(), OverrideLines()
    lines.parse([f"{key}=3"])  # the key's first number: later numbers are built from it
    for text in TEXTS:
        line = f"{key}={text}"
        try:
            expected = parser.parse_overrides([line])[0]
        except Exception as exc:  # noqa: BLE001 - a line Hydra refuses is refused here too, by the parser
            with pytest.raises(type(exc)):
                lines.parse([line])
            continue
        assert same(lines.parse([line])[0], expected), line


def test_the_number_shortcut_is_taken_only_for_single_number_tokens() -> None:
    assert number("1e-4") == 1e-4 and type(number("1e-4")) is float
    assert number("1_000") == 1000 and type(number("1_000")) is int
    assert number("-0") == 0 and type(number("-0")) is int
    for text in ("00", "1__0", "1e-4abc", "true", " 1", "1,2", ""):
        assert number(text) is None, text


def test_a_bool_or_string_value_is_no_template_for_numbers() -> None:
    lines = OverrideLines()
    lines.parse(["a.b=true", "c.d=abc"])
    assert lines.numeric == {}
    assert lines.parse(["a.b=1"])[0].value() == 1  # parsed by Hydra, not from the bool's parse
