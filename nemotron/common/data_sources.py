"""What `data.sources` names: files, globs, weighted sources and blend files (stdlib only).

Each entry of `data.sources` is one of

- a file, glob or directory: `chats/*.jsonl`, `web.jsonl.zst`, `hf_saved/` (unweighted);
- a weighted source `{path: <glob>, weight: 2.0, epochs: 1}` (`name`, `split`, `subset` optional);
- a blend file in the Nemotron cookbook's shape (`data_blend_raw.json`), its sources read as weighted
  entries, their paths relative to the blend file's folder:

      {"datasets": [{"name": "math", "path": "math/*.parquet", "weight": 0.3},
                    {"name": "chat", "path": "hf_chat", "split": "train", "weight": 0.7, "epochs": 2}]}

Either every source has a weight or none has. File kinds: KINDS; a directory is a Hugging Face
dataset saved with `save_to_disk` (its `.arrow` files; `split` picks a DatasetDict's split, default
train) or a folder of parquet shards. Errors are one line naming the entry (`data.sources[i]`).
Used at compose time (nemotron/config/source_rules.py) and by prep (nemotron/runtime/prep/sources.py).
"""

from __future__ import annotations

import glob
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence

KINDS = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet", ".arrow", ".txt")
"""File kinds prep reads (`.arrow`: the files of a `save_to_disk` folder)."""
COLUMNAR = (".parquet", ".arrow")
"""Kinds read by column (the key names a column), streamed by row group or record batch."""


@dataclass(frozen=True)
class Source:
    """One `data.sources` entry (or one dataset of a blend file it names)."""

    where: str
    """How errors name it: `data.sources[1]` or `data.sources[0] (blend.json: datasets[2])`."""
    name: str
    """Shown in the report: the entry's `name`, else its path."""
    path: str
    """File, glob or directory (absolute when it came from a blend file)."""
    weight: Optional[float] = None
    """Share of the final blend (normalized over all sources); None: unweighted."""
    epochs: float = 1.0
    """Passes over the source: exact when unweighted, the most allowed when weighted."""
    split: str = "train"
    """The split of a saved DatasetDict."""
    text_field: Optional[str] = None
    """The field (column) holding the text or messages, instead of data.text_key / data.messages_key."""


def kind_of(path: str) -> Optional[str]:
    """The KINDS entry `path` ends with, else None."""
    return next((k for k in KINDS if str(path).endswith(k)), None)


def _number(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}: {what}={value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where}: {what}={value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{where}: {what}={value!r} must be a non-negative number")
    return number


def _weighted(raw: Any, where: str, base: Optional[Path]) -> Source:
    known = {"path", "weight", "epochs", "name", "split", "subset", "text_field"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (a source takes {', '.join(sorted(known))})")
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError(f"{where}: a weighted source needs `path` (a file, glob or directory)")
    if path.startswith(("hf://", "s3://", "gs://", "http://", "https://")):
        raise ValueError(f"{where}: {path}: remote sources are not read here; download it and name the local copy")
    path = os.path.expanduser(path)
    if base is not None and not os.path.isabs(path):
        path = str(base / path)
    if raw.get("subset"):
        path = os.path.join(path, str(raw["subset"]))
    weight = None if raw.get("weight") is None else _number(raw["weight"], "weight", where)
    epochs = 1.0 if raw.get("epochs") is None else _number(raw["epochs"], "epochs", where)
    if epochs == 0:
        raise ValueError(f"{where}: epochs=0: a source is read at least once (drop it, or give it weight 0)")
    field = raw.get("text_field")
    return Source(where, str(raw.get("name") or path), path, weight, epochs, str(raw.get("split") or "train"),
                  str(field) if field else None)


def read_blend_file(path: str, where: str) -> List[Source]:
    """The sources of a cookbook-shaped blend file (`{"datasets": [{path, weight, ...}]}`)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise FileNotFoundError(f"{where}: blend file {path}: {err.strerror}") from None
    except ValueError as err:
        raise ValueError(f"{where}: blend file {path} is not JSON ({err})") from None
    datasets = raw.get("datasets") if isinstance(raw, dict) else None
    if not isinstance(datasets, list) or not datasets:
        raise ValueError(f"{where}: blend file {path} needs a non-empty `datasets` list of {{path, weight}}")
    out = []
    for j, item in enumerate(datasets):
        here = f"{where} ({path}: datasets[{j}])"
        if not isinstance(item, dict):
            raise ValueError(f"{here}: expected an object with `path` and `weight`")
        out.append(_weighted(item, here, Path(path).absolute().parent))
    return out


def parse_sources(entries: Sequence[Any]) -> List[Source]:
    """Every source `data.sources` names, in order; weights checked (all or none, one positive)."""
    sources: List[Source] = []
    for i, entry in enumerate(entries):
        where = f"data.sources[{i}]"
        if isinstance(entry, str) and entry.endswith(".json"):
            sources += read_blend_file(os.path.expanduser(entry), where)
        elif isinstance(entry, str):
            sources.append(Source(where, entry, os.path.expanduser(entry)))
        elif hasattr(entry, "keys"):
            sources.append(_weighted(dict(entry), where, None))
        else:
            raise ValueError(f"{where}: {entry!r} is neither a path nor a {{path, weight}} source")
    weighted = [s for s in sources if s.weight is not None]
    if weighted and len(weighted) != len(sources):
        bare = next(s for s in sources if s.weight is None)
        raise ValueError(f"{bare.where}: {bare.name} has no weight while {weighted[0].where} has one; "
                         "give every source a weight or none")
    if weighted and not sum(s.weight for s in weighted) > 0:
        raise ValueError(f"data.sources: every weight is 0 ({', '.join(s.where for s in weighted)}); "
                         "at least one source needs a positive weight")
    return sources


def _saved_dataset_files(folder: Path, split: str, where: str) -> Optional[List[str]]:
    """The .arrow files of a `save_to_disk` folder (a Dataset, or a DatasetDict's `split`); None if not one."""
    if (folder / "dataset_dict.json").is_file():
        splits = json.loads((folder / "dataset_dict.json").read_text()).get("splits", [])
        if split not in splits:
            raise ValueError(f"{where}: {folder} holds splits {splits}, not {split!r} (set the source's `split`)")
        folder = folder / split
    state = folder / "state.json"
    if not state.is_file():
        return None
    files = [f["filename"] for f in json.loads(state.read_text()).get("_data_files", [])]
    return [str(folder / f) for f in files]


def source_files(source: Source) -> List[str]:
    """The absolute files one source names, in order; errors name the entry."""
    pattern = source.path
    magic = any(c in pattern for c in "*?[")
    found = sorted(glob.glob(pattern, recursive=True)) if magic else [pattern]
    files: List[str] = []
    for path in found:
        if os.path.isdir(path):
            saved = _saved_dataset_files(Path(path), source.split, source.where)
            shards = saved if saved is not None else sorted(glob.glob(os.path.join(path, "**", "*.parquet"),
                                                                      recursive=True))
            if not shards:
                raise ValueError(f"{source.where}: {path} is a folder but neither a dataset saved with "
                                 "save_to_disk nor a folder of .parquet shards")
            files += shards
        elif os.path.isfile(path):
            files.append(path)
    if not files:
        raise FileNotFoundError(f"{source.where}: {pattern}: no such file")
    for path in files:
        if kind_of(path) is None:
            raise ValueError(f"{source.where}: {path}: expected one of {', '.join(KINDS)}")
    return [os.path.abspath(f) for f in files]
