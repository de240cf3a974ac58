"""A prepared blend on disk without running prep: what compose-time checks of `data=prepared` read."""

from __future__ import annotations

from pathlib import Path

from nemotron.common.blend import write_blend


def prepared_blend(cache_dir: Path, tokenizer: Path) -> Path:
    """blend.json where data=prepared reads it under `cache_dir` (paths.cache_dir), naming one empty shard
    and a copy of `tokenizer`; enough for composition and the dry run, not for training."""
    folder = cache_dir / "data" / "prepared"
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_bytes(tokenizer.read_bytes())
    for ext in (".bin", ".idx"):
        (folder / f"corpus{ext}").write_bytes(b"")
    dataset = {"prefix": "corpus", "weight": 1.0, "num_docs": 1, "num_tokens": 1, "source": "corpus.jsonl"}
    head = {"tokenizer": "tokenizer.json", "tokenizer_sha1": "0", "vocab_size": 6, "eod_token": "<|endoftext|>"}
    write_blend(folder / "blend.json", {**head, "eod": 1, "num_docs": 1, "num_tokens": 1, "datasets": [dataset]})
    return folder / "blend.json"
