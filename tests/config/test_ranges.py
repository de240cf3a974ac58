"""Generated from the schema: every numeric field states a range, and a value outside it is refused.

A new numeric field without a range, or a range the compose-time check ignores, fails here.
"""

from __future__ import annotations

import math

import pytest

from nemotron.config.ranges import field_ranges
from nemotron.config.schema import RunConfig
from nemotron.config.validate import ConfigError, validate

FIELDS = list(field_ranges(RunConfig))
BASE = ["+recipe=gpt/pretrain", "tracker=none"]


def test_the_schema_has_numeric_fields():
    assert len(FIELDS) > 50 and any(key == "optim.lr" for key, _, _ in FIELDS)


@pytest.mark.parametrize("key", [key for key, _, bounds in FIELDS if bounds is None] or ["none"])
def test_every_numeric_field_states_its_range(key):
    assert key == "none", f"{key} has no range: declare it with ranged(default, <Range>) in schema.py"


def outside_values(kind: type, bounds) -> list:
    """Values the range refuses, as the field's type: below (or above) it, and nan/inf for floats."""
    if kind is int:
        return [int(bounds.outside())]
    return [float(bounds.outside()), math.nan, math.inf]


CASES = [(key, value) for key, kind, bounds in FIELDS if bounds is not None for value in outside_values(kind, bounds)]


@pytest.mark.parametrize(("key", "value"), CASES, ids=[f"{k}={v}" for k, v in CASES])
def test_a_value_outside_the_range_is_refused_naming_key_value_and_range(compose, key, value):
    (bounds,) = [b for k, _, b in FIELDS if k == key]
    with pytest.raises(ConfigError) as err:
        validate(compose([*BASE, f"{key}={value}"]))
    line = next(line for line in str(err.value).splitlines() if line.startswith(f"{key}="))
    assert line == f"{key}={value}: out of range, must be {bounds.text()}"


def test_null_stays_allowed_where_the_field_is_optional(compose):
    validate(compose([*BASE, "model.num_query_groups=null", "optim.min_lr=null"]))
