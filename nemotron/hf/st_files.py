"""Hugging Face weight files: find and check them before anything is written, read tensor by tensor,
write sharded safetensors with an index (safetensors' public API; headers parsed per its spec).

A safetensors file is an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range, then the data. `check_shards` reads only headers and file sizes, so a
truncated file is named before an import writes anything. `ShardWriter` holds at most one shard in
memory: tensors are buffered until `max_shard_bytes`, then written as the next shard.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Dict, List, Optional

import torch

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"


class HFInputError(ValueError):
    """A Hugging Face directory or file is missing, incomplete or does not fit; one line says which."""


def require_config(hf_dir: Path) -> dict:
    """config.json of `hf_dir` (HFInputError naming the missing or unreadable file)."""
    if not hf_dir.is_dir():
        raise HFInputError(f"{hf_dir}: not a directory (give a Hugging Face model directory)")
    path = hf_dir / "config.json"
    if not path.is_file():
        raise HFInputError(f"{path}: missing (a Hugging Face model directory has config.json)")
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise HFInputError(f"{path}: not valid JSON ({err})") from None


def weight_map(hf_dir: Path) -> Dict[str, str]:
    """Tensor name -> shard file name, from the index or the shards' headers."""
    if (hf_dir / INDEX).is_file():
        return dict(json.loads((hf_dir / INDEX).read_text())["weight_map"])
    shards = sorted(p.name for p in hf_dir.glob("*.safetensors"))
    if not shards:
        extra = " (only PyTorch .bin weights: save them as safetensors)" if list(hf_dir.glob("*.bin")) else ""
        raise HFInputError(f"{hf_dir / SINGLE}: missing, and no {INDEX} or *.safetensors{extra}")
    return {name: shard for shard in shards for name in header(hf_dir / shard)}


def header(path: Path) -> Dict[str, dict]:
    """The tensor entries of a safetensors header (HFInputError if the file is short or corrupt)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise HFInputError(f"{path}: truncated ({size} bytes, no safetensors header)")
        length = struct.unpack("<Q", raw)[0]
        if 8 + length > size:
            raise HFInputError(f"{path}: truncated (header of {length} bytes, file of {size})")
        try:
            entries = json.loads(f.read(length))
        except ValueError:
            raise HFInputError(f"{path}: corrupt safetensors header") from None
    entries.pop("__metadata__", None)
    end = max((e["data_offsets"][1] for e in entries.values()), default=0)
    if 8 + length + end > size:
        raise HFInputError(f"{path}: truncated ({size} bytes, its header needs {8 + length + end})")
    return entries


def check_shards(hf_dir: Path, names: List[str]) -> Dict[str, str]:
    """The weight map, after checking every shard is complete and holds every name in `names`."""
    wmap = weight_map(hf_dir)
    shapes: Dict[str, dict] = {}
    for shard in sorted(set(wmap.values())):
        path = hf_dir / shard
        if not path.is_file():
            raise HFInputError(f"{path}: missing (named in {INDEX})")
        shapes.update(header(path))
    missing = [n for n in names if n not in wmap or n not in shapes]
    if missing:
        raise HFInputError(
            f"{hf_dir}: tensor {missing[0]!r} is not in the weights ({len(missing)} of {len(names)} missing)"
        )
    return wmap


class ShardReader:
    """Reads tensors by name, opening one shard at a time."""

    def __init__(self, hf_dir: Path, wmap: Dict[str, str]) -> None:
        self.hf_dir, self.wmap = hf_dir, wmap
        self._name: Optional[str] = None
        self._file = None

    def get(self, name: str) -> torch.Tensor:
        from safetensors import safe_open

        shard = self.wmap[name]
        if shard != self._name:
            self._file = safe_open(str(self.hf_dir / shard), framework="pt")
            self._name = shard
        return self._file.get_tensor(name)


class ShardWriter:
    """Writes tensors into model-0000k-of-0000N.safetensors shards of at most `max_shard_bytes`."""

    def __init__(self, out_dir: Path, max_shard_bytes: int) -> None:
        self.out_dir, self.max_bytes = out_dir, max_shard_bytes
        self._buffer: Dict[str, torch.Tensor] = {}
        self._bytes = 0
        self._written: List[List[str]] = []

    def add(self, name: str, tensor: torch.Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        if self._buffer and self._bytes + size > self.max_bytes:
            self._flush()
        self._buffer[name] = tensor.detach().contiguous()
        self._bytes += size

    def _flush(self) -> None:
        from safetensors.torch import save_file

        save_file(self._buffer, str(self.out_dir / f"part-{len(self._written)}.tmp"), {"format": "pt"})
        self._written.append(list(self._buffer))
        self._buffer, self._bytes = {}, 0

    def close(self) -> Dict[str, str]:
        """Write the last shard, name them all k-of-N, write the index; the weight map."""
        if self._buffer or not self._written:
            self._flush()
        n, wmap, total = len(self._written), {}, 0
        for k, names in enumerate(self._written):
            final = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
            os.replace(self.out_dir / f"part-{k}.tmp", self.out_dir / final)
            total += (self.out_dir / final).stat().st_size
            wmap.update(dict.fromkeys(names, final))
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(wmap.items()))}
        (self.out_dir / INDEX).write_text(json.dumps(index, indent=2) + "\n")
        return wmap
