"""Streamed reading of prep's input files, whatever their kind (nemotron/common/data_sources.py KINDS).

- `.jsonl`/`.txt`: lines, addressed by byte (prep cuts shards and pieces by byte range);
- `.jsonl.gz`/`.jsonl.zst`: lines decompressed chunk by chunk (a stream cannot be entered in the
  middle, so shards are ranges of line numbers and a worker decompresses up to its start); a
  truncated or corrupt stream stops with the file and the compressed byte offset;
- `.parquet`: `ParquetFile.iter_batches` over the row groups a range overlaps, only the column(s)
  asked for; `.arrow` (a `save_to_disk` folder's files, Arrow IPC streams): record batches of a
  memory map. Ranges are row numbers; pieces are cut at row-group boundaries where there are enough.

Nothing reads a file whole: memory is one chunk, one row group or one record batch at a time.
"""

from __future__ import annotations

import zlib
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from nemotron.common.data_sources import COLUMNAR, kind_of

CHUNK = 1 << 20
"""Compressed bytes read at a time."""
BATCH_ROWS = 1024
"""Rows converted to Python at a time."""


class TruncatedInput(ValueError):
    """A compressed file that ends (or breaks) before its stream does."""


def by_bytes(path: str) -> bool:
    """Whether shards of `path` are byte ranges (plain `.jsonl`/`.txt`) rather than line or row ranges."""
    return kind_of(path) in (".jsonl", ".txt")


def _decompressor(kind: str) -> Any:
    if kind == ".jsonl.gz":
        return zlib.decompressobj(wbits=31)
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj()


def _chunks(path: str) -> Iterator[bytes]:
    """The decompressed bytes of a .gz or .zst file (several members/frames too), chunk by chunk."""
    kind = kind_of(path)
    offset = 0
    with open(path, "rb") as f:
        d, done = _decompressor(kind), True
        while raw := f.read(CHUNK):
            offset += len(raw)
            while raw:
                if done and not raw.strip(b"\0"):  # padding after the last member
                    break
                try:
                    out = d.decompress(raw)
                except Exception as err:  # zlib.error, zstandard.ZstdError
                    raise TruncatedInput(f"{path}: corrupt {kind[-3:]} stream near compressed byte "
                                         f"{offset - len(raw)} ({err})") from None
                done = bool(d.eof)
                raw = d.unused_data if done else b""
                if done and raw:
                    d = _decompressor(kind)
                if out:
                    yield out
        if not done:
            raise TruncatedInput(f"{path}: truncated {kind[-3:]} file: the stream ends at compressed byte "
                                 f"{offset} before its end marker (an interrupted download or copy?)")


def compressed_lines(path: str) -> Iterator[bytes]:
    """The lines (with their newline) of a compressed JSONL file."""
    rest = b""
    for chunk in _chunks(path):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line + b"\n"
    if rest:
        yield rest


# ---- columnar files ------------------------------------------------------------------------------


def row_groups(path: str) -> List[int]:
    """Rows in each row group (parquet) or record batch (arrow), in order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.endswith(".parquet"):
        meta = pq.ParquetFile(path).metadata
        return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    with pa.memory_map(path) as source:
        return [batch.num_rows for batch in pa.ipc.open_stream(source)]


def _batches(path: str, start: int, end: int, cols: Optional[List[str]]) -> Iterator[Tuple[int, Any]]:
    """(first row, record batch) of the batches overlapping rows [start, end)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.endswith(".parquet"):
        pf = pq.ParquetFile(path)
        first, groups, row = 0, [], 0
        for i in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(i).num_rows
            if first + n > start and first < end:
                row = row if groups else first
                groups.append(i)
            first += n
        if groups:  # contiguous, so their rows follow each other
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=groups, columns=cols):
                yield row, batch
                row += batch.num_rows
        return
    with pa.memory_map(path) as source:
        row = 0
        for batch in pa.ipc.open_stream(source):
            if row + batch.num_rows > start and row < end:
                yield row, batch.select(cols) if cols else batch
            row += batch.num_rows
            if row >= end:
                return


def columnar_rows(path: str, start: int, end: int, cols: Optional[List[str]] = None
                  ) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """(row number, 1-based; the row as a dict of `cols`) of rows [start, end), streamed."""
    for first, batch in _batches(path, start, end, cols):
        lo, hi = max(start - first, 0), min(end - first, batch.num_rows)
        if lo >= hi:
            continue
        for k, row in enumerate(batch.slice(lo, hi - lo).to_pylist()):
            yield first + lo + k + 1, row


def is_columnar(path: str) -> bool:
    return kind_of(path) in COLUMNAR
