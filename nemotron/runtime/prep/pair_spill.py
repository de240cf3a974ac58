"""Encoded preference pairs kept on disk between DPO prep's two passes, so its memory stays flat.

Pass 1 (`PairSpill.add`) appends each kept pair's two samples to one tokens file (int32) and one mask
file (uint8) per source, in a scratch folder beside the outputs; in memory stay only 9 bytes a pair
(its split and its two lengths). Pass 2 (`write_split`) streams the pairs a split selected (per
source, ascending, repeats allowed: `mix.select`) from those files into the split's `.npy` files,
through windows of the spill and a small write buffer: neither pass holds the tokens. The outputs
are byte-identical to concatenating every sample in memory.
"""

from __future__ import annotations

import array
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from nemotron.runtime.prep.sft import save_npy
from nemotron.runtime.prep.sft_pack import NpyWriter

WINDOW = 1 << 20
"""Elements read from a spill file at a time (4 MB of tokens)."""
FLUSH = 1 << 20
"""Elements buffered before a write to an output file."""
CHUNK = 1 << 16
"""Pairs copied per batch of index lookups."""
Sample = Tuple[np.ndarray, np.ndarray]


class _Source:
    """One source's spill files and per-pair records."""

    def __init__(self, folder: Path, index: int) -> None:
        self.tokens_path, self.mask_path = folder / f"{index}.tokens", folder / f"{index}.mask"
        self.tokens, self.mask = open(self.tokens_path, "wb"), open(self.mask_path, "wb")
        self.split = array.array("b")
        self.lengths = array.array("i")
        """Chosen, rejected, chosen, ... sample lengths."""

    def add(self, split: int, chosen: Sample, rejected: Sample) -> None:
        self.split.append(split)
        for ids, mask in (chosen, rejected):
            self.tokens.write(np.ascontiguousarray(ids, np.int32).tobytes())
            self.mask.write(np.ascontiguousarray(mask, np.uint8).tobytes())
            self.lengths.append(len(ids))

    def close(self) -> None:
        self.tokens.close()
        self.mask.close()

    def pair_lengths(self) -> np.ndarray:
        """[pairs, 2] chosen and rejected lengths."""
        return np.frombuffer(self.lengths, np.int32).reshape(-1, 2)


class _Window:
    """Reads [start, end) element ranges of a flat binary file, ascending, a window at a time."""

    def __init__(self, path: Path, dtype: type) -> None:
        self.path, self.dtype = path, np.dtype(dtype)
        self.start, self.data = 0, np.zeros(0, dtype)

    def read(self, start: int, end: int) -> np.ndarray:
        if start < self.start or end > self.start + len(self.data):
            count = max(WINDOW, end - start)
            self.data = np.fromfile(self.path, self.dtype, count=count, offset=start * self.dtype.itemsize)
            self.start = start
        return self.data[start - self.start : end - self.start]


class _Appender:
    """Sequential pieces of a 1-D .npy file of known length (sft_pack.NpyWriter), buffered."""

    def __init__(self, path: Path, dtype: type, length: int) -> None:
        self.out, self.offset = NpyWriter(path, dtype, length), 0
        self.pending: List[np.ndarray] = []
        self.buffered = 0

    def write(self, piece: np.ndarray) -> None:
        self.pending.append(piece)
        self.buffered += len(piece)
        if self.buffered >= FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.out.write(self.offset, np.concatenate(self.pending))
            self.offset += self.buffered
        self.pending, self.buffered = [], 0

    def close(self) -> None:
        self.flush()
        self.out.close()


class PairSpill:
    """Kept pairs per source on disk (a context manager: the scratch folder goes on exit)."""

    def __init__(self, out_dir: Path, num_sources: int) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=".dpo-spill-", dir=out_dir))
        self.sources = [_Source(self.folder, i) for i in range(num_sources)]

    def __enter__(self) -> "PairSpill":
        return self

    def __exit__(self, *exc) -> None:
        for source in self.sources:
            source.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def add(self, source: int, split: int, chosen: Sample, rejected: Sample) -> None:
        """Keep one encoded pair of `source`, assigned to split index `split`."""
        self.sources[source].add(split, chosen, rejected)

    def finish_writing(self) -> None:
        """End pass 1: the spill files are complete and may be read."""
        for source in self.sources:
            source.close()

    def kept(self, source: int) -> int:
        """Pairs kept from `source`."""
        return len(self.sources[source].split)

    def pair_tokens(self, source: int, pairs: np.ndarray) -> int:
        """Tokens (both sides) of the given pair indices of `source`."""
        return int(self.sources[source].pair_lengths()[pairs].sum())

    def write_split(self, base: str, split: int, selected: Sequence[np.ndarray]) -> Dict[str, int]:
        """Write `<base>.{tokens,mask,lengths,bins}.npy` of the pairs `selected[source]` (indices into
        that source's kept pairs, ascending) that fall in `split`; (pairs, tokens) written."""
        picks = self.picks(split, selected)
        lengths = np.concatenate(
            [src.pair_lengths()[p].reshape(-1) for src, p in zip(self.sources, picks, strict=True)]
        ).astype(np.int32)
        total = int(lengths.sum(dtype=np.int64))
        tokens_out = _Appender(Path(f"{base}.tokens.npy"), np.int32, total)
        mask_out = _Appender(Path(f"{base}.mask.npy"), np.uint8, total)
        for source, pairs in zip(self.sources, picks, strict=True):
            self._copy(source, pairs, tokens_out, mask_out)
        tokens_out.close()
        mask_out.close()
        save_npy(Path(f"{base}.lengths.npy"), lengths)
        save_npy(Path(f"{base}.bins.npy"), np.arange(0, len(lengths) + 1, 2, dtype=np.int64))
        return {"pairs": len(lengths) // 2, "tokens": total}

    def picks(self, split: int, selected: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Per source, the indices of `selected[source]` that fall in `split`, in order."""
        out = []
        for source, chosen in zip(self.sources, selected, strict=True):
            chosen = np.asarray(chosen, np.int64)
            out.append(chosen[np.frombuffer(source.split, np.int8)[chosen] == split] if len(chosen) else chosen)
        return out

    @staticmethod
    def _copy(source: _Source, pairs: np.ndarray, tokens_out: _Appender, mask_out: _Appender) -> None:
        sizes = source.pair_lengths().sum(1, dtype=np.int64)
        ends = np.cumsum(sizes)
        starts = ends - sizes
        tokens, mask = _Window(source.tokens_path, np.int32), _Window(source.mask_path, np.uint8)
        for i in range(0, len(pairs), CHUNK):  # Python ints for a chunk of pairs at a time
            for a, e in zip(starts[pairs[i : i + CHUNK]].tolist(), ends[pairs[i : i + CHUNK]].tolist(), strict=True):
                tokens_out.write(tokens.read(a, e))
                mask_out.write(mask.read(a, e))
