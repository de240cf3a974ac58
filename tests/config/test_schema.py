"""The schema documents itself, and the public config surface changes only on purpose."""

from __future__ import annotations

import ast
import dataclasses
import inspect

import pytest

from nemotron.config import schema, schema_dpo

DATACLASSES = [obj for module in (schema, schema_dpo) for _, obj in inspect.getmembers(module, inspect.isclass)
               if dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__]


def field_docstrings(cls: type) -> dict[str, str]:
    """Field name -> the string literal right below it in the class body."""
    body = ast.parse(inspect.getsource(cls)).body[0].body
    docs = {}
    for node, following in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr):
            if isinstance(following.value, ast.Constant) and isinstance(following.value.value, str):
                docs[node.target.id] = following.value.value
    return docs


@pytest.mark.parametrize("cls", DATACLASSES, ids=lambda c: c.__name__)
def test_every_config_field_has_a_docstring(cls):
    docs = field_docstrings(cls)
    missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name, "").strip()]
    assert not missing, f"{cls.__name__} fields without a docstring: {missing}"


def test_top_level_surface_is_frozen():
    # A new knob goes into a group or section, on purpose: update this list in the same change.
    assert [f.name for f in dataclasses.fields(schema.RunConfig)] == [
        "recipe", "model", "data", "train", "optim", "parallel", "checkpoint", "resources", "cluster", "tracker",
        "paths", "preflight", "dpo", "peft", "rl", "eval", "run_dir", "dry_run",
    ]
