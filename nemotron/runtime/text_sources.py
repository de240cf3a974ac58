"""Data prep's inputs: the files `data.sources` names, cut into shards, and the shards' documents.

`.jsonl` holds one JSON object a line with the text under `data.text_key`; `.txt` holds one document
a line. Blank lines and empty texts are skipped. A shard is a byte range of one file holding
`data.docs_per_shard` documents, found by one scan, so workers read only their own range and a
re-run cuts the same shards from the same files. Errors name the `data.sources` entry or file:line.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

KINDS = (".jsonl", ".txt")
"""File types data prep reads."""


@dataclass(frozen=True)
class Shard:
    """A byte range of one source file, encoded by one worker into one .bin/.idx prefix."""

    source_index: int
    """The `data.sources` entry the file came from."""
    path: str
    """The source file (absolute)."""
    prefix: str
    """The output prefix (absolute, without .bin/.idx)."""
    start: int
    """First byte."""
    end: int
    """One past the last byte."""
    first_line: int
    """Line number of `start` (1-based), for error messages."""



def expand_sources(patterns: Sequence[str]) -> List[Tuple[int, str]]:
    """(entry index, absolute path) of every file the `data.sources` entries name, in order, once."""
    if not patterns:
        raise ValueError("data.sources is empty: name the .jsonl/.txt files (or globs) to prepare")
    found: Dict[str, int] = {}
    for i, pattern in enumerate(patterns):
        pattern = os.path.expanduser(str(pattern))
        magic = any(c in pattern for c in "*?[")
        files = sorted(glob.glob(pattern, recursive=True)) if magic else [pattern]
        files = [os.path.abspath(f) for f in files if os.path.isfile(f)]
        if not files:
            raise FileNotFoundError(f"data.sources[{i}]: {pattern}: no such file")
        for path in files:
            if Path(path).suffix not in KINDS:
                raise ValueError(f"data.sources[{i}]: {path}: expected a .jsonl or .txt file")
            found.setdefault(path, i)
    return [(i, path) for path, i in found.items()]


def _cut(path: str, docs_per_shard: int) -> Iterator[Tuple[int, int, int]]:
    """(start byte, end byte, first line) of each run of `docs_per_shard` non-blank lines."""
    start = pos = docs = 0
    first = 1
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            pos += len(line)
            if line.strip():
                docs += 1
                if docs == docs_per_shard:
                    yield start, pos, first
                    start, first, docs = pos, lineno + 1, 0
    if docs:
        yield start, pos, first


def _stems(paths: Sequence[str]) -> List[str]:
    """Output names: the file stem, made unique with a path hash where two files share one."""
    stems = [Path(p).stem for p in paths]
    return [s if stems.count(s) == 1 else f"{s}-{hashlib.sha1(p.encode()).hexdigest()[:8]}"
            for s, p in zip(stems, paths)]


def plan_shards(files: Sequence[Tuple[int, str]], docs_per_shard: int, out_dir: Path) -> List[Shard]:
    """Every shard of every file, in order."""
    if docs_per_shard < 1:
        raise ValueError(f"data.docs_per_shard={docs_per_shard} must be at least 1")
    shards = []
    for (index, path), stem in zip(files, _stems([p for _, p in files])):
        for n, (start, end, first) in enumerate(_cut(path, docs_per_shard)):
            prefix = str(out_dir / f"{stem}-{n:05d}_text_document")
            shards.append(Shard(index, path, prefix, start, end, first))
    return shards


def iter_documents(shard: Shard, text_key: str) -> Iterator[str]:
    """The shard's documents; a bad line raises ValueError naming file:line."""
    jsonl = shard.path.endswith(".jsonl")
    with open(shard.path, "rb") as f:
        f.seek(shard.start)
        pos, lineno = shard.start, shard.first_line
        for line in f:
            if pos >= shard.end:
                return
            pos += len(line)
            if line.strip():
                text = (_jsonl_text(line, text_key, shard.path, lineno) if jsonl
                        else _txt(line, shard.path, lineno))
                if text:
                    yield text
            lineno += 1


def _txt(line: bytes, path: str, lineno: int) -> str:
    try:
        return line.rstrip(b"\r\n").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}:{lineno}: not UTF-8 ({exc.reason} at byte {exc.start})") from None


def _jsonl_text(line: bytes, text_key: str, path: str, lineno: int) -> str:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"{path}:{lineno}: not a JSON object ({exc})") from None
    text = record.get(text_key) if isinstance(record, dict) else None
    if not isinstance(text, str):
        raise ValueError(f"{path}:{lineno}: no string field {text_key!r} (data.text_key)")
    return text


def batches(items: Iterable[str], size: int) -> Iterator[List[str]]:
    batch: List[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
