"""Reading one region of one tensor of a torch_dist checkpoint: the one place that knows
torch.distributed.checkpoint's file layout (its `.metadata` and the per-chunk storage records).

Megatron's partial `dist_checkpointing.load` cannot load one layer of a layer-stacked tensor in a
world of one (torch's ShardedTensor wants every shard of a key local), so the export streams by
reading the chunks that overlap the wanted region straight from the `.distcp` files: each chunk
is a `torch.save`d tensor at a recorded offset and length. Those storage records are torch's private
layout: `SUPPORTED` is the torch range it was checked against (pyproject.toml pins the same).
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import torch

from nemotron.common.versions import refusal

SUPPORTED = {"torch": ">=2.4,<2.14"}
"""The torch releases whose torch_dist file layout (`.metadata`, chunk offset/length records) was checked."""


@lru_cache(maxsize=4)
def _metadata(ckpt_dir: str) -> Any:
    from torch.distributed.checkpoint import FileSystemReader

    refused = refusal(SUPPORTED, "nemotron/hf/dcp_compat.py (torch_dist file layout)", {"torch": torch.__version__})
    if refused:
        raise ImportError(refused)

    return FileSystemReader(ckpt_dir).read_metadata()


def _chunk(ckpt_dir: str, info: Any) -> torch.Tensor:
    if getattr(info, "transform_descriptors", None):
        raise NotImplementedError(f"{ckpt_dir}: chunk {info.relative_path} is stored transformed (compressed)")
    with open(Path(ckpt_dir) / info.relative_path, "rb") as f:
        f.seek(info.offset)
        data = io.BytesIO(f.read(info.length))
    return torch.load(data, map_location="cpu", weights_only=True)


def read_region(ckpt_dir: str, key: str, offsets: Sequence[int], sizes: Sequence[int]) -> torch.Tensor:
    """The [offsets, offsets + sizes) block of checkpoint tensor `key`, assembled from its chunks."""
    meta = _metadata(ckpt_dir)
    tensor_meta = meta.state_dict_metadata[key]
    out = torch.empty(tuple(sizes), dtype=tensor_meta.properties.dtype)
    for index, info in meta.storage_data.items():
        if index.fqn != key:
            continue
        chunk_sizes = _chunk_sizes(tensor_meta, index.offset)
        lo = [max(o, c) for o, c in zip(offsets, index.offset, strict=True)]
        hi = [min(o + s, c + n) for o, s, c, n in zip(offsets, sizes, index.offset, chunk_sizes, strict=True)]
        if any(a >= b for a, b in zip(lo, hi, strict=True)):
            continue
        chunk = _chunk(ckpt_dir, info)
        src = tuple(slice(a - c, b - c) for a, b, c in zip(lo, hi, index.offset, strict=True))
        dst = tuple(slice(a - o, b - o) for a, b, o in zip(lo, hi, offsets, strict=True))
        out[dst] = chunk[src]
    return out


def _chunk_sizes(tensor_meta: Any, offset: Sequence[int]) -> Sequence[int]:
    for chunk in tensor_meta.chunks:
        if tuple(chunk.offsets) == tuple(offset):
            return tuple(chunk.sizes)
    raise KeyError(f"no chunk at offset {tuple(offset)}")
