"""`data.tokenizer_path` names a `tokenizers` JSON file or a Hugging Face tokenizer directory (its
tokenizer.json, with tokenizer_config.json and its chat template beside it). Standard library only:
the config checks and the runtime both resolve it here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
