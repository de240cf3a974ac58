"""SFT prep's last step: select the blend (mix.py), split, pack and write `sft-<split>.*.npy`, streamed.

Memory stays flat as inputs grow: a first pass reads only each shard's sample lengths and line
numbers (a few bytes a sample) to choose, split and pack; a second pass loads one shard's tokens at a
time and writes each selected sample straight to its place in the output files (`.npy` headers
written first, the rest at computed offsets), so no split is ever held whole.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from nemotron.common.atomic_files import tmp_path_for
from nemotron.common.data_sources import Source
from nemotron.runtime.prep import mix, packing
from nemotron.runtime.prep.sources import Shard

SPLITS = ("train", "valid", "test")


def split_fractions(split: str) -> List[float]:
    """`data.split` ("98,1,1") as three fractions summing to 1."""
    try:
        parts = [float(p) for p in split.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3 or any(p < 0 for p in parts) or not sum(parts) > 0:
        raise ValueError(f"data.split={split!r} must be three non-negative parts, e.g. '98,1,1'")
    return [p / sum(parts) for p in parts]


def split_of(seed: int, source_index: int, path: str, lineno: int, bounds: Sequence[float]) -> int:
    u = zlib.crc32(f"{seed}:{source_index}:{Path(path).name}:{lineno}".encode()) / 2**32
    return next((i for i, b in enumerate(bounds) if u < b), len(bounds) - 1)


class NpyWriter:
    """A 1-D .npy file of known length written at offsets (under a temp name until `close`)."""

    def __init__(self, path: Path, dtype: Any, length: int) -> None:
        self.path, self.tmp, self.dtype = path, tmp_path_for(path), np.dtype(dtype)
        self.f = open(self.tmp, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (length,)}
        np.lib.format.write_array_header_1_0(self.f, header)
        self.base = self.f.tell()
        self.f.truncate(self.base + length * self.dtype.itemsize)

    def write(self, offset: int, values: np.ndarray) -> None:
        self.f.seek(self.base + offset * self.dtype.itemsize)
        self.f.write(np.ascontiguousarray(values, self.dtype).tobytes())

    def close(self) -> None:
        self.f.close()
        os.replace(self.tmp, self.path)


Pick = Tuple[int, int]
"""(shard index, sample index in that shard) of one selected sample (repeated when chosen twice)."""


def _plan(shards: Sequence[Shard], sources: Sequence[Source], chat_path: Any, seed: int, split: str):
    """The selected samples by split, with their lengths; and per source (selected, tokens)."""
    bounds = np.cumsum(split_fractions(split)).tolist()
    per_source: Dict[int, List[Tuple[int, np.ndarray, np.ndarray]]] = {}
    for i, shard in enumerate(shards):
        with np.load(chat_path(shard)) as z:
            per_source.setdefault(shard.source_index, []).append((i, z["lengths"], z["lines"]))
    kept = [sum(len(x[1]) for x in per_source.get(s, [])) for s in range(len(sources))]
    targets = mix.target_counts(kept, sources)
    picks: Dict[str, List[Tuple[Pick, int]]] = {name: [] for name in SPLITS}
    chosen, chosen_tokens = [0] * len(sources), [0] * len(sources)
    for s, parts in sorted(per_source.items()):
        owner = np.concatenate([np.full(len(lengths), i) for i, lengths, _ in parts])
        local = np.concatenate([np.arange(len(lengths)) for _, lengths, _ in parts])
        lengths = np.concatenate([lengths for _, lengths, _ in parts])
        lines = np.concatenate([lines for _, _, lines in parts])
        for k in mix.select(kept[s], targets[s], seed, s).tolist():
            i = int(owner[k])
            name = SPLITS[split_of(seed, s, shards[i].path, int(lines[k]), bounds)]
            picks[name].append(((i, int(local[k])), int(lengths[k])))
            chosen[s] += 1
            chosen_tokens[s] += int(lengths[k])
    return picks, chosen, chosen_tokens


def write_splits(shards: Sequence[Shard], sources: Sequence[Source], chat_path: Any, out_dir: Path,
                 seq_length: int, seed: int, split: str) -> Tuple[Dict[str, Any], List[int], List[int]]:
    """Write every non-empty split (train always); (split summaries, selected and tokens per source)."""
    picks, chosen, chosen_tokens = _plan(shards, sources, chat_path, seed, split)
    writers: Dict[str, Tuple[NpyWriter, NpyWriter]] = {}
    places: Dict[int, Dict[int, List[Tuple[str, int]]]] = {}  # shard -> sample -> (split, offset) of copies
    summaries: Dict[str, Any] = {}
    for name, items in picks.items():
        if not items and name != "train":
            continue
        positions = [n - 1 for _, n in items]  # inputs ids[:-1] predict ids[1:]
        bins = packing.best_fit_decreasing(positions, seq_length) if items else []
        order = [j for b in bins for j in b]
        total = sum(n for _, n in items)
        base = out_dir / f"sft-{name}"
        writers[name] = (NpyWriter(Path(f"{base}.tokens.npy"), np.int32, total),
                         NpyWriter(Path(f"{base}.mask.npy"), np.uint8, total))
        offset = 0
        for j in order:
            (i, k) = items[j][0]
            places.setdefault(i, {}).setdefault(k, []).append((name, offset))
            offset += items[j][1]
        lengths = np.asarray([items[j][1] for j in order], np.int32)
        _save(Path(f"{base}.lengths.npy"), lengths)
        _save(Path(f"{base}.bins.npy"), np.cumsum([0] + [len(b) for b in bins]).astype(np.int64))
        summaries[name] = {"prefix": base.name, "num_samples": len(order), "num_bins": len(bins),
                           "num_tokens": int(total),
                           "packing_efficiency": round(packing.efficiency(positions, bins, seq_length), 6)}
    for i, shard in enumerate(shards):  # one shard's samples in memory at a time
        wanted = places.pop(i, None)
        if not wanted:
            continue
        with np.load(chat_path(shard)) as z:
            tokens, mask, lengths = z["tokens"], z["mask"], z["lengths"]
        starts = np.concatenate([[0], np.cumsum(lengths)])
        for k, copies in sorted(wanted.items()):
            a, b = starts[k], starts[k + 1]
            for name, offset in copies:
                writers[name][0].write(offset, tokens[a:b])
                writers[name][1].write(offset, mask[a:b])
    for pair in writers.values():
        for w in pair:
            w.close()
    return summaries, chosen, chosen_tokens


def _save(path: Path, array: np.ndarray) -> None:
    tmp = tmp_path_for(path)
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)
