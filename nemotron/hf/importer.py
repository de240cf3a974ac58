"""`import-hf`: a Hugging Face directory -> a Megatron-Core dist checkpoint our recipes load.

Every check runs before anything is written: config.json and the weights exist, the architecture is
mapped, the model option agrees with config.json (each mismatch named), every shard is complete
and every tensor has the shape the model needs. Tensors are then read one layer group at a time
and copied into this rank's shard of the built model, which is saved as `<out>/iter_0000000`
beside `model.yaml` (the model option it was built with), the tokenizer files and
`nemotron_import.json` (source path and content hash). Rank 0 registers it as an artifact of kind
`model`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from omegaconf import OmegaConf

from nemotron.common.progress import Progress
from nemotron.hf import configmap, mapping, streaming
from nemotron.hf import megatron_side as ours
from nemotron.hf.st_files import HFInputError, ShardReader, check_shards, require_config

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "generation_config.json",
)
"""Copied along on import and export when present."""
IMPORT_RECORD = "nemotron_import.json"
MODEL_YAML = "model.yaml"


def resolve_model(hf: Dict[str, Any], option: Optional[str], overrides: List[str]) -> Any:
    """The model config to build: the option checked against config.json, or derived from it."""
    derived = configmap.model_from_hf(hf)
    model = ours.model_config(option, overrides, base=None if option else derived)
    if model.vocab_size is None:
        model.vocab_size = derived["vocab_size"]
    problems = configmap.mismatches(hf, model)
    if problems:
        raise configmap.ConfigMismatch(
            f"model={option} does not match config.json ({len(problems)} mismatches):\n" + "\n".join(problems)
        )
    return model


def refuse_existing(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise HFInputError(f"{out_dir}: exists and is not empty; pass --overwrite to replace it")


def _expected_hf_shapes(rule: mapping.Rule, full_shape: torch.Size) -> List[tuple]:
    return [tuple(t.shape) for t in rule.split(torch.empty(full_shape, device="meta"))]


def full_shape(param: torch.Tensor) -> torch.Size:
    """A parameter's shape before tensor-parallel sharding."""
    shape = list(param.shape)
    if getattr(param, "tensor_model_parallel", False):
        shape[getattr(param, "partition_dim", 0)] *= ours.tp_layout()[0]
    return torch.Size(shape)


def fill(megatron: Any, model: Any, reader: ShardReader, put: Callable[[str, torch.Tensor], None]) -> None:
    """Convert every mapped HF tensor and `put(name, this rank's shard)`, one layer group at a time
    (`megatron` may be on the meta device: only shapes, dtypes and TP attributes are read)."""
    params = ours.local_params(megatron)
    total = sum(len(rule.theirs) for _, rules in mapping.groups(model) for rule in rules)
    with Progress("import-hf", total=total, unit="tensors", quiet=_rank() != 0) as progress:
        _fill(model, reader, put, params, progress)


def _fill(
    model: Any,
    reader: ShardReader,
    put: Callable[[str, torch.Tensor], None],
    params: Dict[str, Any],
    progress: Progress,
) -> None:
    for _, rules in mapping.groups(model):
        for rule in rules:
            param = params[rule.ours]
            expected = _expected_hf_shapes(rule, full_shape(param))
            tensors = [reader.get(name) for name in rule.theirs]
            for name, tensor, shape in zip(rule.theirs, tensors, expected, strict=True):
                if tuple(tensor.shape) != shape:
                    raise HFInputError(
                        f"tensor {name!r} has shape {tuple(tensor.shape)} but the model needs {shape} (for {rule.ours})"
                    )
            whole = rule.join([t.to(param.dtype) for t in tensors])
            parts = ours.parts_of(rule.ours, model, rule.parts, whole)
            put(rule.ours, ours.shard(rule.ours, whole, param.shape, parts))
            del tensors, whole
            progress.update(len(rule.theirs))


def convert(cfg: Any, model: Any, reader: ShardReader, out_dir: Path, meta: Dict[str, Any]) -> Path:
    """Build on meta, fill with memory-mapped converted tensors, save; the iter_0000000 folder."""
    megatron = streaming.build_meta(cfg)
    owners = streaming.owners(megatron)
    scratch = streaming.scratch_dir(out_dir)
    try:
        fill(megatron, model, reader, lambda key, t: streaming.place(megatron, key, t, scratch, owners))
        missing = streaming.still_meta(megatron)
        if missing:
            raise HFInputError(f"no Hugging Face tensor maps to {missing[0]!r} ({len(missing)} unfilled)")
        return ours.save(cfg, megatron, out_dir, meta, streaming.prebuilt_state_dict(megatron, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def copy_tokenizer(src: Path, dst: Path) -> List[str]:
    """Copy the TOKENIZER_FILES present in `src` into `dst`; the names copied."""
    copied = []
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
            copied.append(name)
    return copied


def _register(out_dir: Path, hf_dir: Path, registry: Optional[str], family: str) -> Dict[str, Any]:
    from nemotron.tracking.registry import DEFAULT_REGISTRY, Registry, content_hash

    source_hash = content_hash([hf_dir])
    record = {
        "source": str(hf_dir),
        "source_hash": source_hash[0],
        "source_hash_mode": source_hash[1],
        "family": family,
    }
    (out_dir / IMPORT_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return Registry(registry or DEFAULT_REGISTRY).register(
        f"model/{out_dir.name}",
        "model",
        out_dir,
        content_hash([out_dir]),
        {"run_dir": None},
        inputs=[],
        note=f"imported from Hugging Face {hf_dir}",
        **record,
    )


def import_hf(
    hf_dir: str,
    option: Optional[str],
    overrides: List[str],
    out: Optional[str],
    overwrite: bool = False,
    registry: Optional[str] = None,
    tp: int = 1,
) -> Path:
    """Convert `hf_dir`; the checkpoint folder. Raises HFInputError/ConfigMismatch on bad input."""
    src = Path(hf_dir).resolve()
    hf = require_config(src)
    family = configmap.architecture(hf, str(src / "config.json"))
    model = resolve_model(hf, option, overrides)
    wmap = check_shards(src, mapping.hf_names(model))
    out_dir = Path(out or f"outputs/imported/{src.name}").resolve()
    refuse_existing(out_dir, overwrite)
    cfg = ours.run_config(model, tp)
    meta = {"imported_from": str(src), "model_option": option}
    path = convert(cfg, model, ShardReader(src, wmap), out_dir, meta)
    if _rank() == 0:
        (out_dir / MODEL_YAML).write_text(OmegaConf.to_yaml(OmegaConf.to_container(model, enum_to_str=True)))
        (out_dir / "hf_config.json").write_text(json.dumps(hf, indent=1) + "\n")
        copy_tokenizer(src, out_dir)
        _register(out_dir, src, registry, family)
    return path


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_initialized() else 0
