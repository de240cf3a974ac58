"""One shard of text data prep: encode a byte range of a source file into Megatron's .bin/.idx (whole,
or as pieces a worker encodes and this process merges in order), then write the `.done.json`
marker that lets a re-run skip it. Called by `text.run_shards` (nemotron/runtime/prep/text.py).
"""

from __future__ import annotations

import gc
import glob
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

from nemotron.common.atomic_files import read_json, tmp_path_for, write_atomic
from nemotron.runtime.prep import tokens as prep_tokens
from nemotron.runtime.prep.sources import Shard, batches, iter_documents

ENCODE_BATCH = 1000
"""Documents per `encode_batch_fast` call."""


def marker_path(shard: Shard) -> Path:
    """The file whose presence (with a matching signature) means the shard is finished."""
    return Path(shard.prefix + ".done.json")


def finished(shard: Shard, sig: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The shard's marker when it matches `sig` and the .bin/.idx exist, else None."""
    marker = read_json(marker_path(shard))
    if not isinstance(marker, dict) or any(marker.get(k) != v for k, v in sig.items()):
        return None
    if not all(Path(shard.prefix + ext).is_file() for ext in (".bin", ".idx")):
        return None
    return marker


def megatron_builder() -> Tuple[Any, Any]:
    """Megatron's (DType, IndexedDatasetBuilder); importing them imports megatron.core (~4 s)."""
    # Expected without Transformer Engine and repeated by several megatron modules: not news here.
    warnings.filterwarnings("ignore", message=r".*(Transformer Engine|Apex).*not installed",
                            category=UserWarning)
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder

    return DType, IndexedDatasetBuilder


def _encode_range(shard: Shard, sig: Dict[str, Any], tokenizer_path: str, bin_path: str,
                  idx_path: str) -> Tuple[int, int]:
    """Encode the documents of `shard`'s byte range (a whole shard or one piece) into bin_path and
    idx_path with Megatron's builder, an EOD after each; (documents, tokens)."""
    DType, IndexedDatasetBuilder = megatron_builder()
    tok = prep_tokens.load_tokenizer(tokenizer_path, sig["tokenizer_sha1"])
    eod = prep_tokens.eod_id(tok, sig["eod_token"], tokenizer_path)
    builder = IndexedDatasetBuilder(bin_path, dtype=DType.optimal_dtype(tok.get_vocab_size()))
    num_docs = num_tokens = 0
    for batch in batches(iter_documents(shard, sig["text_key"]), ENCODE_BATCH):
        for encoding in tok.encode_batch_fast(batch):
            ids = encoding.ids
            ids.append(eod)
            builder.add_document(ids, [len(ids)])
            num_tokens += len(ids)
        num_docs += len(batch)
    builder.finalize(idx_path)
    return num_docs, num_tokens


def _finish(shard: Shard, sig: Dict[str, Any], num_docs: int, num_tokens: int) -> Dict[str, Any]:
    """Rename the shard's temp .bin/.idx into place, then write its marker; return the marker."""
    for ext in (".bin", ".idx"):
        os.replace(tmp_path_for(shard.prefix + ext), shard.prefix + ext)
    marker = {**sig, "num_docs": num_docs, "num_tokens": num_tokens}
    write_atomic(marker_path(shard), json.dumps(marker).encode())  # last: "finished"
    return marker


def clear_stale(shard: Shard) -> None:
    """Remove the temp and part files a killed run left for this shard."""
    for stale in glob.glob(glob.escape(shard.prefix) + ".*.tmp*"):
        os.unlink(stale)


def encode_shard(shard: Shard, sig: Dict[str, Any], tokenizer_path: str) -> Dict[str, Any]:
    """Encode one whole shard into <prefix>.bin/.idx, then write its marker; return the marker."""
    bin_path, idx_path = tmp_path_for(shard.prefix + ".bin"), tmp_path_for(shard.prefix + ".idx")
    return _finish(shard, sig, *_encode_range(shard, sig, tokenizer_path, str(bin_path), str(idx_path)))


def part_prefix(shard: Shard, index: int) -> str:
    """Where piece `index` of a split shard is written before the merge (`clear_stale` finds it)."""
    return f"{shard.prefix}.part{index:04d}.tmp"


def encode_piece(piece: Shard, index: int, sig: Dict[str, Any], tokenizer_path: str) -> Tuple[int, int]:
    """Encode one piece of a split shard into its part .bin/.idx; (documents, tokens)."""
    part = part_prefix(piece, index)
    return _encode_range(piece, sig, tokenizer_path, part + ".bin", part + ".idx")


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Objects alive now left out of garbage collection meanwhile: Megatron's `add_index` runs a full
    `gc.collect()` per part, ~0.3 s each over the objects torch and megatron.core leave here."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def merge_pieces(shard: Shard, sig: Dict[str, Any], counts: Sequence[Tuple[int, int]],
                 vocab_size: int) -> Dict[str, Any]:
    """Concatenate a split shard's parts, in order, into its .bin/.idx (the bytes one worker would
    have written), remove them, then write the marker; return the marker."""
    DType, IndexedDatasetBuilder = megatron_builder()
    builder = IndexedDatasetBuilder(str(tmp_path_for(shard.prefix + ".bin")), dtype=DType.optimal_dtype(vocab_size))
    parts = [part_prefix(shard, i) for i in range(len(counts))]
    with _gc_frozen():
        for part in parts:
            builder.add_index(part)
    builder.finalize(str(tmp_path_for(shard.prefix + ".idx")))
    for part in parts:
        for ext in (".bin", ".idx"):
            os.unlink(part + ext)
    return _finish(shard, sig, sum(d for d, _ in counts), sum(t for _, t in counts))
