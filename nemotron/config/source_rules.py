"""Rules about what `data.sources` names, checked at compose time (stdlib only; pyarrow for schemas).

Registered by appending SOURCE_RULES to nemotron.config.inputs.INPUT_RULES (validate.RULES includes
those): weights and blend files (`source_weights_valid`), every source matching files
(`sources_match`, in inputs.py) and columnar files holding the named column (`source_columns_exist`).
"""

from __future__ import annotations

from typing import Any, Optional

from nemotron.common import columns
from nemotron.common.data_sources import COLUMNAR, kind_of, parse_sources, source_files
from nemotron.common.stages import writes_data

MAX_SCHEMAS = 256
"""Columnar files whose schema compose reads at most (the rest are checked by prep as it reads them)."""


def source_weights_valid(cfg: Any) -> Optional[str]:
    """Weighted sources and blend files parse: weights numbers, non-negative, not all zero, all or none."""
    if not writes_data(cfg):
        return None
    try:
        parse_sources(list(cfg.data.sources))
    except (OSError, ValueError) as err:
        return str(err)
    return None


def source_columns_exist(cfg: Any) -> Optional[str]:
    """Every parquet/arrow file a prep reads has the column(s) it reads (its schema, not its rows)."""
    if not writes_data(cfg):
        return None
    d = cfg.data
    try:
        sources = parse_sources(list(d.sources))
        files = [(s, f) for s in sources for f in source_files(s) if kind_of(f) in COLUMNAR]
    except (OSError, ValueError):
        return None  # said by source_weights_valid or sources_match
    for source, path in files[:MAX_SCHEMAS]:
        key = source.text_field
        line = columns.missing_column(path, str(cfg.recipe.name), key or d.text_key,
                                      key or d.get("messages_key", "messages"))
        if line:
            return f"{source.where}: {line}"
    return None


SOURCE_RULES = [source_weights_valid, source_columns_exist]
"""Run after inputs.sources_match (see inputs.INPUT_RULES)."""
