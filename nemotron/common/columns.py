"""The columns of parquet and arrow inputs, and which ones a prep needs (torch-free; pyarrow lazily).

Read from the file's schema only (the parquet footer, the arrow stream's first message), so compose
time can refuse a file without the named column before anything starts, listing the columns it has.
"""

from __future__ import annotations

from typing import List, Optional, Sequence


def columns(path: str) -> List[str]:
    """The column names of a `.parquet` or `.arrow` (Arrow IPC stream, `save_to_disk`) file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.endswith(".parquet"):
        return list(pq.read_schema(path).names)
    with pa.memory_map(path) as source:
        return list(pa.ipc.open_stream(source).schema.names)


def needed(stage: str, text_key: str, messages_key: str, have: Sequence[str]) -> List[Sequence[str]]:
    """Column sets of which one must be present, with the key that names them: pretraining the text,
    SFT the messages (or prompt and completion), DPO chosen and rejected."""
    if stage == "data/prep_sft":
        return [(messages_key,), ("prompt", "completion")]
    if stage == "data/prep_dpo":
        return [("chosen", "rejected")]
    return [(text_key,)]


def missing_column(path: str, stage: str, text_key: str, messages_key: str) -> Optional[str]:
    """One line when `path` lacks the columns `stage` reads (None when it has them)."""
    have = columns(path)
    options = needed(stage, text_key, messages_key, have)
    if any(all(c in have for c in option) for option in options):
        return None
    first = next(c for c in options[0] if c not in have)
    key = {"data/prep_sft": "data.messages_key", "data/prep_dpo": "a preference pair"}.get(stage, "data.text_key")
    return f"{path}: no column {first!r} ({key}); its columns: {', '.join(have) or '(none)'}"
