"""The bad-input suite: 100+ mistyped or impossible commands, each a real `python -m nemotron.train`.

Every case must exit 2 with at most a few lines, the first `error: ...` naming the culprit (key, value,
file:line or path), no traceback, and leave nothing behind: no run directory, no log, no MLflow store
(nothing started, nothing submitted: no case reaches sbatch, whose path needs a valid config first).
The cases: cases_overrides.py, cases_layout.py, cases_inputs.py, cases_files.py, cases_runs.py.
"""

from __future__ import annotations

import pytest
from case import run_cases
from cases_files import CASES as FILES
from cases_inputs import CASES as INPUTS
from cases_layout import CASES as LAYOUT
from cases_overrides import CASES as OVERRIDES
from cases_runs import CASES as RUNS

ALL = {case.name: case for case in [*OVERRIDES, *LAYOUT, *INPUTS, *FILES, *RUNS]}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_cases(ALL.values(), tmp_path_factory.mktemp("bad_input"))


def test_the_suite_has_at_least_a_hundred_distinct_cases():
    assert len(ALL) >= 100 and len({c.args + tuple(sorted(c.files.items())) for c in ALL.values()}) == len(ALL)


@pytest.mark.parametrize("name", sorted(ALL))
def test_bad_input_is_refused_in_one_line_and_leaves_nothing(results, name):
    case, (result, outputs) = ALL[name], results[name]
    said = result.stdout + result.stderr
    assert result.returncode == case.code, said[-3000:]
    assert "Traceback" not in said and "Error executing job" not in said, said[-3000:]
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= case.max_lines and lines[0].startswith("error: "), result.stderr
    assert case.expect in result.stderr, result.stderr
    assert [str(p) for p in outputs.rglob("*") if p.is_file()] == []  # no run dir, log or MLflow store
