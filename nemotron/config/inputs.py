"""Rules about files a run reads, checked before anything starts (stdlib only, no torch).

Each is a validation rule (`nemotron.config.validate.RULES`): a path the run must read is checked
on this machine, so a typo is one line at compose time instead of a traceback from the training
process (for Slurm, on the submitting machine, which sees the shared filesystem). Also the model
rules that need the tokenizer's size or the pipeline split.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from nemotron.config import rl_rules
from nemotron.config.source_rules import SOURCE_RULES
from nemotron.common import blend
from nemotron.common import data_sources
from nemotron.common import checkpoint_index
from nemotron.common.hybrid_pattern import hybrid_pattern
from nemotron.common.stages import is_chat_prep, writes_data
from nemotron.common.tokenizer_files import tokenizer_json, tokenizer_tokens


def load_dir_has_checkpoint(cfg: Any) -> Optional[str]:
    load_dir = cfg.checkpoint.load_dir
    if load_dir is None:
        return None
    if not Path(load_dir).is_dir():
        return f"checkpoint.load_dir={load_dir}: no such directory"
    if not checkpoint_index.complete_checkpoints(str(load_dir)):
        return (f"checkpoint.load_dir={load_dir} holds no complete checkpoint "
                f"(folders iter_NNNNNNN with a {checkpoint_index.MARKER})")
    return None


def pretrained_checkpoint_exists(cfg: Any) -> Optional[str]:
    """checkpoint.pretrained names a complete checkpoint, unless the run resumes from its own."""
    value, ck = cfg.checkpoint.get("pretrained"), cfg.checkpoint
    if not value or (ck.resume and checkpoint_index.complete_checkpoints(str(ck.dir))):
        return None
    try:
        checkpoint_index.pretrained_checkpoint(str(value), str(cfg.paths.output_root))
    except checkpoint_index.PretrainedNotFound as err:
        return None if rl_rules.may_start_random(cfg, str(value)) else str(err)
    return None


def blend_file_ready(cfg: Any) -> Optional[str]:
    path = cfg.data.blend_file
    if path is None or writes_data(cfg):
        return None
    try:
        found = blend.read_blend(path)
    except (OSError, ValueError) as err:
        return str(err)
    missing = blend.missing_files(found)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        return f"data.blend_file={path} names files that do not exist: {missing[0]}{more}"
    return None


def prefixes_exist(cfg: Any) -> Optional[str]:
    for prefix in cfg.data.prefixes:
        for ext in (".bin", ".idx"):
            if not Path(prefix + ext).is_file():
                return f"data.prefixes: {prefix}{ext} does not exist (a prefix names <prefix>.bin and <prefix>.idx)"
    return None


def prefixes_complete(cfg: Any) -> Optional[str]:
    """Prefixes need their tokenizer and, when weighted, one weight each; never a blend file too."""
    d = cfg.data
    if not d.prefixes or writes_data(cfg):
        return None
    if d.blend_file:
        return f"data.prefixes and data.blend_file={d.blend_file} are both set; use one of them"
    if d.tokenizer_path is None:
        return "data.prefixes needs data.tokenizer_path (the tokenizer the shards were prepared with)"
    if d.weights is not None and len(d.weights) != len(d.prefixes):
        return f"data.weights has {len(d.weights)} entries for {len(d.prefixes)} data.prefixes; give one weight each"
    return None


def has_training_data(cfg: Any) -> Optional[str]:
    """A training run reads prepared shards, a blend, a packed SFT file or the generated tiny data."""
    d = cfg.data
    if writes_data(cfg) or d.generate_tiny or d.prefixes or d.blend_file or d.get("packed_file"):
        return None
    return ("no training data: set data.prefixes, data.blend_file, data.packed_file (SFT) "
            "or data.generate_tiny=true")


def writable_path(path: Path) -> bool:
    """True when `path` could be created: its nearest existing parent is a writable directory."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    return parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)


def tracker_path_writable(cfg: Any) -> Optional[str]:
    path = cfg.tracker.get("path") if cfg.tracker.get("kind") == "jsonl" else None
    if path and not writable_path(Path(str(path))):
        return f"tracker.path={path}: cannot be written (no writable directory above it)"
    return None


def tokenizer_exists(cfg: Any) -> Optional[str]:
    path = cfg.data.tokenizer_path
    if path is not None and not Path(tokenizer_json(path)).is_file():
        return (f"data.tokenizer_path={path}: no such file (a `tokenizers` JSON file, or a Hugging Face "
                "tokenizer directory holding tokenizer.json)")
    return None


def sources_match(cfg: Any) -> Optional[str]:
    """Every source (a glob, a weighted source, each dataset of a blend file) names files prep reads."""
    if not writes_data(cfg):
        return None
    try:
        sources = data_sources.parse_sources(list(cfg.data.sources))
    except (OSError, ValueError):
        return None  # said by source_rules.source_weights_valid
    for source in sources:
        try:
            data_sources.source_files(source)
        except FileNotFoundError:
            where = "data.sources" if source.where.endswith("]") else source.where  # a blend file names it
            return f"{where}: {source.path} matches no file"
        except ValueError as err:
            return str(err)
    return None


def chat_prep_inputs(cfg: Any) -> Optional[str]:
    """SFT and DPO prep write beside `data.packed_file` with the model's tokenizer, from .jsonl chats."""
    if not is_chat_prep(cfg):
        return None
    d = cfg.data
    if not d.packed_file:
        return f"data.packed_file is null: {cfg.recipe.name} writes its samples and manifest beside it"
    if not d.tokenizer_path:
        return (
            "data.tokenizer_path is null: name the tokenizer the model was trained with "
            "(e.g. data.tokenizer_path=<the tokenizer.json beside its blend file>)"
        )
    if not d.sources and not d.generate_tiny:
        return f"data.sources is empty: name the .jsonl chat files {cfg.recipe.name} reads (or data.generate_tiny=true)"
    try:
        files = [f for s in data_sources.parse_sources(list(d.sources)) for f in data_sources.source_files(s)]
    except (OSError, ValueError):
        return None  # said by sources_match or source_rules
    text = [p for p in files if p.endswith(".txt")]
    if text:
        return f"data.sources: {text[0]}: {cfg.recipe.name} reads chat records (.jsonl[.gz|.zst], .parquet), not .txt"
    return None


def split_valid(cfg: Any) -> Optional[str]:
    split = str(cfg.data.split)
    try:
        parts = [float(p) for p in split.replace("/", ",").split(",")]
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3 or min(parts) < 0 or sum(parts) <= 0:
        return (f"data.split={split!r} must be up to three non-negative numbers, train,valid,test "
                f"(e.g. data.split='98,1,1'; quote it on the command line)")
    return None


def pipeline_divides_layers(cfg: Any) -> Optional[str]:
    pp, m = cfg.parallel.pipeline_model_parallel_size, cfg.model
    layers = len(hybrid_pattern(m)) if getattr(m.arch, "name", m.arch) == "hybrid" else m.num_layers
    if pp > 1 and layers % pp:
        return (f"parallel.pipeline_model_parallel_size={pp} must divide the model's {layers} layers "
                f"(model.num_layers={m.num_layers})")
    return None


def vocab_covers_tokenizer(cfg: Any) -> Optional[str]:
    vocab = cfg.model.vocab_size
    tokens = tokenizer_tokens(cfg) if vocab else None
    if tokens is not None and vocab < tokens:
        return (f"model.vocab_size={vocab} is smaller than the tokenizer's {tokens} tokens "
                f"(set model.vocab_size=null to take the tokenizer's, padded)")
    return None


INPUT_RULES = [
    has_training_data, tracker_path_writable, load_dir_has_checkpoint, pretrained_checkpoint_exists, blend_file_ready,
    prefixes_exist, prefixes_complete, tokenizer_exists, sources_match, *SOURCE_RULES, chat_prep_inputs, split_valid,
    pipeline_divides_layers,
    vocab_covers_tokenizer,
]
"""In the order their errors are reported (after the layout rules)."""
