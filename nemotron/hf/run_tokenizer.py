"""The tokenizer a checkpoint trained here was trained with, for `export-hf` to ship beside the weights.

A run keeps its tokenizer outside the checkpoint folder: `data.tokenizer_path`, the blend file's
tokenizer, or the embedded tiny data's (under `data.cache_dir`, or data=tiny's beside it for the
tiny SFT data). The run's `config.yaml` above `checkpoints/` says which. The export writes its
tokenizer.json and a tokenizer_config.json (the one beside it, else a minimal one naming the
end-of-document token and, for post-training runs, the chat template they rendered with), so the
exported directory loads with `AutoTokenizer` alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import OmegaConf

from nemotron.common.blend import read_blend, tiny_blend_path
from nemotron.common.tokenizer_files import TOKENIZER_CONFIG, TOKENIZER_JSON, tokenizer_config, tokenizer_json

POST_TRAINING = ("/sft", "/dpo", "/rl")
"""Recipes whose tokenizer_config carries the chat template they trained with."""


def _tiny_tokenizer(d: Any) -> Optional[Path]:
    from nemotron.runtime.data.sft import pretrain_tiny

    for data_cfg in (d, pretrain_tiny(d)):
        path = tiny_blend_path(data_cfg).parent / TOKENIZER_JSON
        if path.is_file():
            return path
    return None


def run_tokenizer(cfg: Any) -> Optional[Path]:
    """The tokenizer.json run config `cfg` trained with; None when it names none that exists."""
    d = cfg.data
    if d.get("tokenizer_path"):
        path = Path(tokenizer_json(d.tokenizer_path))
    elif d.get("blend_file") and Path(str(d.blend_file)).is_file():
        path = Path(read_blend(d.blend_file).tokenizer_path)
    elif d.get("generate_tiny"):
        path = _tiny_tokenizer(d)
    else:
        return None
    return path if path is not None and path.is_file() else None


def _minimal_config(cfg: Any, tokenizer: Path) -> dict:
    eod = str(cfg.data.get("eod_token") or "<|endoftext|>")
    out = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": eod, "pad_token": eod}
    if str(cfg.recipe.name).endswith(POST_TRAINING):
        from nemotron.runtime.prep import chat

        out["chat_template"] = chat.template_source(cfg.data.get("chat_template"), str(tokenizer))[0]
    return out


def copy_run_tokenizer(root: Path, out: Path) -> List[str]:
    """Write the tokenizer of the run above checkpoint folder `root` into `out`; the files written."""
    config = root.parent / "config.yaml"
    if not config.is_file():
        return []
    cfg = OmegaConf.load(config)
    tokenizer = run_tokenizer(cfg)
    if tokenizer is None:
        return []
    shutil.copy2(tokenizer, out / TOKENIZER_JSON)
    beside = tokenizer_config(tokenizer)
    if beside.is_file():
        shutil.copy2(beside, out / TOKENIZER_CONFIG)
    else:
        (out / TOKENIZER_CONFIG).write_text(json.dumps(_minimal_config(cfg, tokenizer), indent=1) + "\n")
    return [TOKENIZER_JSON, TOKENIZER_CONFIG]


def eos_id(out: Path, cfg_eod: str = "<|endoftext|>") -> Optional[int]:
    """The end-of-document token's id in the tokenizer written to `out`, if any."""
    path = out / TOKENIZER_JSON
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path)).token_to_id(cfg_eod)
