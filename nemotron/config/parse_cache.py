"""Reuse OmegaConf's interpolation parse trees while a command composes and its sweep's members are made.

OmegaConf parses an interpolation string (`${recipe.nodes}`) with its ANTLR grammar every time the
value is read, ~0.5 ms each: one dry run read 76 of them, 17 distinct (`python -m nemotron.train`
wraps its whole run in `cached_parsing()`), and a member reads ~14, so a 256-member sweep spent ~2 s
parsing the same strings again (the sweep launcher opens its own block too). Within `cached_parsing()` the parse function OmegaConf's nodes call is wrapped in
an LRU cache keyed by the string (parse trees are only visited, never changed); the original is put
back on exit, so nothing outside the sweep launcher sees a difference.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Iterator

from nemotron.config.hydra_compat import omegaconf_base as base

CACHE_SIZE = 4096
"""Distinct interpolation strings kept (a config has a few dozen)."""


@contextmanager
def cached_parsing() -> Iterator[None]:
    """Within the block, OmegaConf parses each distinct interpolation string once."""
    original = base.parse
    base.parse = functools.lru_cache(maxsize=CACHE_SIZE)(original)
    try:
        yield
    finally:
        base.parse = original
