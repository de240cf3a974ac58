"""`data.tokenizer_path` names a `tokenizers` JSON file or a Hugging Face tokenizer directory (its
tokenizer.json, with tokenizer_config.json and its chat template beside it). Standard library only:
the config checks and the runtime both resolve it here, and the config checks and the memory estimate
(`nemotron.memory.layout`) read the run's tokenizer size here before anything starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from nemotron.common import blend
from nemotron.common.stages import writes_data

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
EOD_TOKEN = "<|endoftext|>"
"""The default end-of-document token (`data.eod_token`) of tokenizers data prep trains."""


def tokenizer_json(path: Any) -> str:
    """The tokenizer.json a tokenizer path means (a directory's, else the file itself)."""
    p = Path(str(path))
    return str(p / TOKENIZER_JSON) if p.is_dir() else str(p)


def tokenizer_config(path: Any) -> Path:
    """The tokenizer_config.json beside the tokenizer a path means (it may not exist)."""
    return Path(tokenizer_json(path)).parent / TOKENIZER_CONFIG


def tokenizer_size(path: str) -> Optional[int]:
    """Tokens of a `tokenizers` JSON file (vocabulary and added tokens); None when unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        vocab = data["model"]["vocab"]
        ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab)))
        ids += [t["id"] for t in data.get("added_tokens", [])]
        return max(ids) + 1
    except (OSError, ValueError, KeyError, TypeError):
        return None


def tokenizer_tokens(cfg: Any) -> Optional[int]:
    """The run's tokenizer size when it can be known before starting (file, blend or generated)."""
    d = cfg.data
    if d.tokenizer_path is not None:
        return tokenizer_size(tokenizer_json(d.tokenizer_path))
    if d.blend_file is not None and not writes_data(cfg):
        try:
            return tokenizer_size(blend.read_blend(d.blend_file).tokenizer_path)
        except (OSError, ValueError):
            return None
    return int(d.tokenizer_vocab_size) if d.generate_tiny and not d.prefixes else None
