"""Data prep's inputs: the files `data.sources` names, cut into shards, and the shards' documents.

`.jsonl` holds one JSON object a line with the text under `data.text_key`; `.txt` holds one document
a line. Blank lines and empty texts are skipped. A shard is a byte range of one file holding
`data.docs_per_shard` documents, found by one scan, so workers read only their own range and a
re-run cuts the same shards from the same files. The same scan may also cut each shard into pieces
of about equal bytes (`Shard.splits`, `split_pieces`) that several workers encode side by side; the
shards themselves never depend on that. Errors name the `data.sources` entry or file:line.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from array import array
from bisect import bisect_left
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

KINDS = (".jsonl", ".txt")
"""File types data prep reads."""


@dataclass(frozen=True)
class Shard:
    """A byte range of one source file, encoded (whole, or its pieces side by side) into one output prefix."""

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
    splits: Tuple[Tuple[int, int], ...] = ()
    """(byte, line number) where each piece after the first begins; empty: the shard is one piece."""


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


Cut = Tuple[int, int, int, Tuple[Tuple[int, int], ...]]


def _cut(path: str, docs_per_shard: int, pieces: int = 1) -> Iterator[Cut]:
    """(start byte, end byte, first line, splits) of each run of `docs_per_shard` non-blank lines,
    each run cut into up to `pieces` pieces of about equal bytes (whole lines, one or more each)."""
    start = pos = docs = 0
    first = 1
    starts, lines = array("q"), array("q")  # of this shard's non-blank lines, when cutting pieces
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            begin, pos = pos, pos + len(line)
            if line.strip():
                docs += 1
                if pieces > 1:
                    starts.append(begin)
                    lines.append(lineno)
                if docs == docs_per_shard:
                    yield start, pos, first, _splits(starts, lines, start, pos, pieces)
                    start, first, docs = pos, lineno + 1, 0
                    del starts[:], lines[:]
    if docs:
        yield start, pos, first, _splits(starts, lines, start, pos, pieces)


def _splits(starts: array, lines: array, start: int, end: int, pieces: int) -> Tuple[Tuple[int, int], ...]:
    """Where pieces 2..k of the byte range [start, end) begin: the first non-blank line at or
    after each k-th of the bytes, at least one line a piece; k = min(pieces, lines in the range)."""
    k = min(pieces, len(starts))
    cuts, prev = [], 0
    for j in range(1, k):
        i = bisect_left(starts, start + (end - start) * j // k)
        i = min(max(i, prev + 1), len(starts) - (k - j))
        cuts.append((starts[i], lines[i]))
        prev = i
    return tuple(cuts)


def split_pieces(shard: Shard) -> List[Shard]:
    """The shard's pieces, in order, each a byte range of its own (one piece when not split)."""
    bounds = [(shard.start, shard.first_line), *shard.splits, (shard.end, 0)]
    return [replace(shard, start=a, end=b, first_line=line, splits=())
            for (a, line), (b, _) in zip(bounds, bounds[1:])]


def _stems(paths: Sequence[str]) -> List[str]:
    """Output names: the file stem, made unique with a path hash where two files share one."""
    stems = [Path(p).stem for p in paths]
    return [s if stems.count(s) == 1 else f"{s}-{hashlib.sha1(p.encode()).hexdigest()[:8]}"
            for s, p in zip(stems, paths)]


def plan_shards(files: Sequence[Tuple[int, str]], docs_per_shard: int, out_dir: Path,
                pieces: int = 1) -> List[Shard]:
    """Every shard of every file, in order, each cut into up to `pieces` pieces (see `_cut`)."""
    if docs_per_shard < 1:
        raise ValueError(f"data.docs_per_shard={docs_per_shard} must be at least 1")
    shards = []
    for (index, path), stem in zip(files, _stems([p for _, p in files])):
        for n, (start, end, first, splits) in enumerate(_cut(path, docs_per_shard, pieces)):
            prefix = str(out_dir / f"{stem}-{n:05d}_text_document")
            shards.append(Shard(index, path, prefix, start, end, first, splits))
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
