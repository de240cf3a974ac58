"""Compose rules of eval runs that read the checkpoint's own record (stdlib and omegaconf, no torch).

A checkpoint trained here has its run's `config.yaml` above `checkpoints/` (an imported or averaged
one: `model.yaml` beside its iter folders): the model it holds and the tokenizer it was trained
with. Compose compares them with this run's, so a checkpoint of another shape or another tokenizer
is one line before anything starts; a checkpoint with no record (or not written yet, in a pipeline)
is checked when its weights load (nemotron/runtime/checkpoint/fit.py names the tensor).
Few-shot counts are checked against the local tasks' sizes, which compose knows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from nemotron.common import checkpoint_index
from nemotron.common.blend import read_blend, tiny_blend_path
from nemotron.common.eval_tasks import local_task_sizes
from nemotron.common.stages import is_eval
from nemotron.common.tokenizer_files import tokenizer_json, tokenizer_size, tokenizer_tokens

SHAPE_KEYS = (
    "arch", "num_layers", "hidden_size", "num_attention_heads", "num_query_groups", "kv_channels",
    "ffn_hidden_size", "vocab_size", "activation", "add_bias_linear", "normalization",
    "share_embeddings_and_output_weights", "position_embedding_type", "hybrid_layer_pattern",
    "num_moe_experts", "moe_ffn_hidden_size", "moe_shared_expert_intermediate_size",
    "mamba_num_heads", "mamba_head_dim", "mamba_state_dim", "mamba_num_groups",
)  # fmt: skip
"""model.* settings that change a tensor's shape (or which tensors exist)."""


def _checkpoint(cfg: Any) -> Optional[Tuple[str, Dict[str, Any]]]:
    """(checkpoint.pretrained's value, the checkpoint's run record) for an eval run, when both exist."""
    value = cfg.checkpoint.get("pretrained")
    if not is_eval(cfg) or not value:
        return None
    try:
        found = checkpoint_index.pretrained_checkpoint(str(value), str(cfg.paths.output_root))
    except checkpoint_index.PretrainedNotFound:  # said by pretrained_checkpoint_exists
        return None
    record = checkpoint_record(Path(found.path).parent)
    return (str(value), record) if record is not None else None


def checkpoint_record(root: Path) -> Optional[Dict[str, Any]]:
    """The run config (as a dict) above checkpoint folder `root`, or {"model": model.yaml}; None if none."""
    from omegaconf import OmegaConf

    try:
        if (root / "model.yaml").is_file():
            return {"model": OmegaConf.to_container(OmegaConf.load(root / "model.yaml"))}
        if (root.parent / "config.yaml").is_file():
            return OmegaConf.to_container(OmegaConf.load(root.parent / "config.yaml"))
    except (OSError, ValueError):
        return None
    return None


def _plain(value: Any) -> Any:
    return getattr(value, "name", value)  # an enum as its name, as config.yaml writes it


def eval_checkpoint_shape(cfg: Any) -> Optional[str]:
    """checkpoint.pretrained holds the model this run builds (the settings that shape its tensors)."""
    found = _checkpoint(cfg)
    if found is None:
        return None
    value, record = found
    theirs = record.get("model") or {}
    for key in SHAPE_KEYS:
        there, here = theirs.get(key), _plain(cfg.model.get(key))
        if there is None or here is None or str(there).startswith("${") or str(there) == str(here):
            continue
        return (
            f"checkpoint.pretrained={value} holds another model: model.{key}={there} there, {here} in "
            f"this run, so its tensors have other shapes; evaluate it with model.{key}={there} "
            "(the model it was trained with)"
        )
    return None


def tokenizer_file(record: Any) -> Optional[Path]:
    """The tokenizer.json a run config (dict or DictConfig) names and that exists, if any."""
    from omegaconf import OmegaConf

    d = record.get("data") or {}
    try:
        d = OmegaConf.create(d) if isinstance(d, dict) else d
        if d.get("tokenizer_path"):
            path = Path(tokenizer_json(d["tokenizer_path"]))
        elif d.get("packed_file") and Path(str(d["packed_file"])).is_file():
            manifest = Path(str(d["packed_file"]))
            path = manifest.parent / json.loads(manifest.read_text()).get("tokenizer", "tokenizer.json")
        elif d.get("blend_file") and Path(str(d["blend_file"])).is_file():
            path = Path(read_blend(d["blend_file"]).tokenizer_path)
        elif d.get("generate_tiny"):
            path = tiny_blend_path(d).parent / "tokenizer.json"
        else:
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return path if path.is_file() else None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def eval_tokenizer_matches(cfg: Any) -> Optional[str]:
    """This run's tokenizer is the one checkpoint.pretrained was trained with (same file content, or,
    when this run's is not generated yet, the same size)."""
    found = _checkpoint(cfg)
    theirs = tokenizer_file(found[1]) if found else None
    if theirs is None:
        return None
    ours = tokenizer_file(cfg)
    there = tokenizer_size(str(theirs))
    if ours is not None:
        if _digest(ours) == _digest(theirs):
            return None
        here, what = tokenizer_size(str(ours)), f"{ours}, another file"
    else:
        here, what = tokenizer_tokens(cfg), "this run's data settings"
        if here is None or there is None or here == there:
            return None
    return (
        f"checkpoint.pretrained={found[0]} was trained with tokenizer {theirs} ({there} tokens), this run "
        f"has {here} tokens ({what}); evaluate it with data.tokenizer_path={theirs}"
    )


def eval_task_sizes(cfg: Any) -> Optional[str]:
    """Each local task has documents, and eval.num_fewshot leaves a document out of its own examples
    (at most size - 1)."""
    if not is_eval(cfg):
        return None
    sizes, shots = local_task_sizes(cfg), cfg.eval.num_fewshot or 0
    for name in cfg.eval.tasks:
        if sizes.get(name) == 0:
            return f"eval.tasks: {name} has no documents for these settings (rl.max_operand, data.split)"
        if name in sizes and shots > sizes[name] - 1:
            knob = {
                "nemotron_tiny_ppl": "data.num_documents and data.split",
                "nemotron_arithmetic": "eval.num_examples, or the held-out sums of rl.max_operand",
            }
            knob = knob.get(name, "eval.num_examples")
            return (
                f"eval.num_fewshot={shots}: task {name} has {sizes[name]} documents ({knob}), so at most "
                f"{sizes[name] - 1} examples besides the one asked"
            )
    return None
