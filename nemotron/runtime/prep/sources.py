"""Data prep's inputs: the files `data.sources` names, cut into shards, and the shards' documents.

`.jsonl` (also `.jsonl.gz`, `.jsonl.zst`) holds one JSON object a line with the text under
`data.text_key`; `.txt` holds one document a line; `.parquet` and `.arrow` (a `save_to_disk` folder)
hold it in the column `data.text_key` (or a weighted source's `text_field`). Blank lines and empty
texts are skipped. A shard is a range of one file holding `data.docs_per_shard` documents, found by
one streamed scan (parquet/arrow: from the row counts), so workers read only their own range and a
re-run cuts the same shards from the same files: bytes of a plain file, line numbers of a compressed
one, row numbers of a columnar one (records.py). The same scan may also cut each shard into pieces
(`Shard.splits`, `split_pieces`; parquet at row-group boundaries) that several workers encode side by
side; the shards themselves never depend on that. Errors name the `data.sources` entry or file:line.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from bisect import bisect_left
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from nemotron.common.data_sources import KINDS, kind_of, parse_sources, source_files
from nemotron.common import columns
from nemotron.runtime.prep import records

__all__ = ["KINDS", "Shard", "expand_sources", "plan_shards", "iter_documents", "shard_records"]


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
    """(position, line number) where each piece after the first begins; empty: the shard is one piece."""
    key: Optional[str] = None
    """The field holding the text (or messages), when its source names one (`text_field`)."""


def expand_sources(entries: Sequence[Any]) -> List[Tuple[int, str]]:
    """(source index, absolute path) of every file the `data.sources` entries name, in order, once
    (a file two sources name belongs to the first). Source indices count `parse_sources(entries)`."""
    if not entries:
        raise ValueError("data.sources is empty: name the files (or globs, or a blend file) to prepare")
    found: Dict[str, int] = {}
    for i, source in enumerate(parse_sources(entries)):
        for path in source_files(source):
            found.setdefault(path, i)
    return [(i, path) for path, i in found.items()]


Cut = Tuple[int, int, int, Tuple[Tuple[int, int], ...]]


def _cut(path: str, docs_per_shard: int, pieces: int = 1) -> Iterator[Cut]:
    """(start, end, first line, splits) of each run of `docs_per_shard` documents, each run cut into
    up to `pieces` pieces of about equal size; positions are bytes, line indices or rows (records.py)."""
    if records.is_columnar(path):
        yield from _cut_rows(path, docs_per_shard, pieces)
        return
    yield from _cut_lines(path, docs_per_shard, pieces)


def _cut_rows(path: str, docs_per_shard: int, pieces: int) -> Iterator[Cut]:
    """Shards of `docs_per_shard` rows; pieces at row-group boundaries where there are enough."""
    groups = records.row_groups(path)
    bounds = array("q", [0])
    for n in groups:
        bounds.append(bounds[-1] + n)
    total = bounds[-1]
    for start in range(0, total, docs_per_shard):
        end = min(start + docs_per_shard, total)
        cand = array("q", [start] + [b for b in bounds if start < b < end])
        if pieces > 1 and len(cand) < min(pieces, end - start):
            cand = array("q", range(start, end))  # too few row groups: cut by rows
        yield start, end, start + 1, _splits(cand, array("q", [c + 1 for c in cand]), start, end, pieces)


def _lines(path: str) -> Iterator[bytes]:
    if records.by_bytes(path):
        with open(path, "rb") as f:
            yield from f
    else:
        yield from records.compressed_lines(path)


def _cut_lines(path: str, docs_per_shard: int, pieces: int) -> Iterator[Cut]:
    """Runs of `docs_per_shard` non-blank lines (by byte for plain files, by line index otherwise)."""
    start = pos = docs = 0
    first = 1
    starts, lines = array("q"), array("q")  # of this shard's non-blank lines, when cutting pieces
    step = records.by_bytes(path)
    for lineno, line in enumerate(_lines(path), 1):
        begin, pos = pos, pos + (len(line) if step else 1)
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
    """Output names: the file name less its kind, made unique with a path hash where two files share one."""
    stems = [Path(p).name[: -len(kind_of(p) or Path(p).suffix) or None] for p in paths]
    return [s if stems.count(s) == 1 else f"{s}-{hashlib.sha1(p.encode()).hexdigest()[:8]}"
            for s, p in zip(stems, paths)]


def plan_shards(files: Sequence[Tuple[int, str]], docs_per_shard: int, out_dir: Path,
                pieces: int = 1, keys: Optional[Sequence[Optional[str]]] = None) -> List[Shard]:
    """Every shard of every file, in order, each cut into up to `pieces` pieces (see `_cut`);
    `keys[source index]`: the field a source names for its text, if any."""
    if docs_per_shard < 1:
        raise ValueError(f"data.docs_per_shard={docs_per_shard} must be at least 1")
    shards = []
    for (index, path), stem in zip(files, _stems([p for _, p in files])):
        key = keys[index] if keys else None
        for n, (start, end, first, splits) in enumerate(_cut(path, docs_per_shard, pieces)):
            prefix = str(out_dir / f"{stem}-{n:05d}_text_document")
            shards.append(Shard(index, path, prefix, start, end, first, splits, key))
    return shards


def source_keys(entries: Sequence[Any]) -> List[Optional[str]]:
    """Each source's own `text_field` (None: the data.*_key applies)."""
    return [s.text_field for s in parse_sources(entries)]


def shard_records(shard: Shard, cols: Optional[List[str]] = None) -> Iterator[Tuple[int, Any]]:
    """(line or row number, the raw line as bytes or the row as a dict of `cols`) of the shard."""
    if records.is_columnar(shard.path):
        yield from records.columnar_rows(shard.path, shard.start, shard.end, cols)
        return
    if not records.by_bytes(shard.path):
        for index, line in enumerate(records.compressed_lines(shard.path)):
            if index >= shard.end:
                return
            if index >= shard.start:
                yield index + 1, line
        return
    with open(shard.path, "rb") as f:
        f.seek(shard.start)
        pos, lineno = shard.start, shard.first_line
        for line in f:
            if pos >= shard.end:
                return
            pos += len(line)
            yield lineno, line
            lineno += 1


def iter_documents(shard: Shard, text_key: str) -> Iterator[str]:
    """The shard's documents; a bad line raises ValueError naming file:line."""
    key = shard.key or text_key
    columnar, txt = records.is_columnar(shard.path), kind_of(shard.path) == ".txt"
    if columnar and (missing := columns.missing_column(shard.path, "data/prep", key, key)):
        raise ValueError(missing)
    for lineno, item in shard_records(shard, [key] if columnar else None):
        if columnar:
            text = item.get(key)
            if text is not None and not isinstance(text, str):
                raise ValueError(f"{shard.path}: row {lineno}: column {key!r} is a {type(text).__name__}, "
                                 "not text (data.text_key)")
        elif not item.strip():
            continue
        else:
            text = _txt(item, shard.path, lineno) if txt else _jsonl_text(item, key, shard.path, lineno)
        if text:
            yield text


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
