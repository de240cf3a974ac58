"""The blend file: what data prep wrote and what training reads (`data.blend_file`).

A JSON file beside the shards it names; relative paths are relative to its own folder, so a prepared
folder can be moved or copied as a whole:

    {"format": 1,
     "tokenizer": "tokenizer.json", "tokenizer_sha1": "3f1c…", "vocab_size": 512,
     "eod_token": "<|endoftext|>", "eod": 0,
     "num_docs": 2000, "num_tokens": 151234,
     "datasets": [{"prefix": "web-00000_text_document", "weight": 0.75,
                   "num_docs": 1000, "num_tokens": 113425, "source": "/data/web.jsonl"}, …]}

`weight`s sum to 1; `num_tokens` counts every token in the .bin, the end-of-document tokens included.
Stdlib only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from nemotron.common.atomic_files import write_text_atomic

FORMAT = 1
"""Version of the blend file layout; readers refuse other versions."""


@dataclass(frozen=True)
class Blend:
    """A blend file, paths made absolute."""

    path: Path
    """The blend file itself."""
    tokenizer_path: str
    """The tokenizer every shard was encoded with."""
    tokenizer_sha1: str
    """SHA-1 of the tokenizer file's bytes."""
    prefixes: List[str]
    """Megatron indexed-dataset prefixes (without .bin/.idx)."""
    weights: List[float]
    """One weight per prefix, summing to 1."""
    num_tokens: List[int]
    """Tokens in each prefix's .bin."""
    vocab_size: int
    """The tokenizer's vocabulary size."""

    def megatron_weights(self) -> Optional[List[float]]:
        """Weights as Megatron's blend wants them: None for a single prefix (no blending layer)."""
        return None if len(self.prefixes) == 1 else list(self.weights)


def write_blend(path: Path, content: Dict[str, Any]) -> bool:
    """Write `content` (the layout above) atomically; False when the file already says exactly that."""
    text = json.dumps({"format": FORMAT, **content}, indent=1) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_text_atomic(path, text)
    return True


def read_blend(path: str | Path) -> Blend:
    """Read a blend file; errors name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"data.blend_file: {path} not found; write it with `python -m nemotron.train "
            "+recipe=data/prep data.sources=[...]`")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
        datasets = raw["datasets"]
        if not datasets:
            raise ValueError("no datasets")
        return Blend(
            path=path,
            tokenizer_path=str(path.parent / raw["tokenizer"]),
            tokenizer_sha1=raw["tokenizer_sha1"],
            prefixes=[str(path.parent / d["prefix"]) for d in datasets],
            weights=[float(d["weight"]) for d in datasets],
            num_tokens=[int(d["num_tokens"]) for d in datasets],
            vocab_size=int(raw["vocab_size"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"data.blend_file: {path} is not a blend file ({detail})") from None


def missing_files(blend: Blend) -> List[str]:
    """The .bin/.idx files (and tokenizer) a blend names that are not on disk."""
    wanted = [blend.tokenizer_path] + [p + ext for p in blend.prefixes for ext in (".bin", ".idx")]
    return [p for p in wanted if not Path(p).is_file()]


CORPUS_VERSION = 2
"""Bump when the embedded tiny corpus's generator or layout changes: its cache key (the folder) changes."""


def tiny_blend_path(data_cfg: Any) -> Path:
    """The blend file of the generated tiny data for `data_cfg` (its shards and corpus beside it); here,
    stdlib only, so lineage (in the MLflow uploader) finds it without importing torch."""
    d = data_cfg
    key = f"v{CORPUS_VERSION}-n{d.num_documents}-t{d.tokenizer_vocab_size}-s{d.seed}"
    return Path(d.cache_dir) / f"tiny-{key}" / "blend.json"
