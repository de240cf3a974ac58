"""Ranges of numeric config fields, stated in the schema next to each field's type and docstring.

    steps: int = ranged(30, AT_LEAST_1)   # with its docstring on the next line, as every field

`nemotron.config.validate.values_in_range(cfg)` is a validation rule: every field with a range is checked at compose time,
one line naming the key, the value and the range. null stays allowed where the type is Optional
(null means "derive it"). Floats must also be finite (nan and inf are refused). A test generated
from the schema requires a range on every numeric field and checks that a value outside each is
refused.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Tuple


@dataclass(frozen=True)
class Range:
    """Bounds of a number: `low`/`high` (None: unbounded), each inclusive unless marked open."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def text(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return "finite"

    def outside(self) -> float:
        """A value this range refuses (for the generated test)."""
        if self.low is not None:
            return self.low - 1
        if self.high is not None:
            return self.high + 1
        return math.inf


AT_LEAST_1 = Range(low=1)
NON_NEGATIVE = Range(low=0)
POSITIVE = Range(low=0, low_open=True)
UNIT = Range(low=0, high=1)
FRACTION = Range(low=0, high=1, high_open=True)
"""[0, 1): dropout probabilities, Adam betas, headroom."""
FINITE = Range()


def ranged(default: Any, bounds: Range) -> Any:
    """A dataclass field with `default` and its range in the field's metadata."""
    return dataclasses.field(default=default, metadata={"range": bounds})


def field_ranges(node: type, prefix: str = "") -> Iterator[Tuple[str, type, Optional[Range]]]:
    """(dotted key, int or float, range or None) of every scalar numeric field below the dataclass `node`."""
    hints = typing.get_type_hints(node)
    for f in dataclasses.fields(node):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            yield from field_ranges(kind, f"{prefix}{f.name}.")
        elif numeric_type(kind) is not None:
            yield f"{prefix}{f.name}", numeric_type(kind), f.metadata.get("range")


def numeric_type(kind: Any) -> Optional[type]:
    """int or float for `int`, `float` and their Optional forms; None for anything else (bool too)."""
    args = [a for a in typing.get_args(kind) if a is not type(None)] if typing.get_origin(kind) else [kind]
    return args[0] if len(args) == 1 and args[0] in (int, float) else None
