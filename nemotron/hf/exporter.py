"""`export-hf`: a Megatron-Core checkpoint -> a Hugging Face directory transformers loads.

The model option comes from the checkpoint: `model.yaml` beside an imported one, the run's
`config.yaml` above a trained one's `checkpoints/` folder, else `model=<option>`. The checkpoint is
loaded at TP=1 (Megatron reshards any saved layout), and tensors are written layer group by layer
group into safetensors shards of at most `max_shard_bytes` (one shard in memory at a time), with
config.json and the tokenizer files it had (a run trained here: the tokenizer its config.yaml names,
nemotron/hf/run_tokenizer.py, its end-of-document id as config.json's eos_token_id). Everything is
written into `<out>.tmp-*` and renamed at the end. `--verify` compares logits with transformers' on
fixed prompts; the result goes into `nemotron_export.json` and the registry manifest (kind `model`,
its input the source checkpoint).
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import OmegaConf

from nemotron.common.progress import Progress
from nemotron.hf import configmap, mapping, streaming
from nemotron.hf import megatron_side as ours
from nemotron.hf.importer import IMPORT_RECORD, MODEL_YAML, copy_tokenizer, refuse_existing
from nemotron.hf.run_tokenizer import copy_run_tokenizer, eos_id
from nemotron.hf.st_files import HFInputError, ShardWriter

EXPORT_RECORD = "nemotron_export.json"
DEFAULT_SHARD_BYTES = 2 << 30


def checkpoint_model(root: Path, option: Optional[str], overrides: List[str]) -> Any:
    """The model config of the checkpoint folder `root` (see the module docstring)."""
    if option:
        return ours.model_config(option, overrides)
    if (root / MODEL_YAML).is_file():
        return ours.model_config(None, overrides, base=OmegaConf.to_container(OmegaConf.load(root / MODEL_YAML)))
    run_config = root.parent / "config.yaml"
    if run_config.is_file():
        model = OmegaConf.to_container(OmegaConf.load(run_config).model, resolve=False)
        return ours.model_config(None, overrides, base=model)
    raise HFInputError(
        f"{root}: no {MODEL_YAML} and no ../config.yaml saying which model it holds; name it with model=<option>"
    )


def checkpoint_and_model(ckpt: str, option: Optional[str], overrides: List[str]) -> Tuple[Any, Path, Any]:
    """(the Found checkpoint `ckpt` names, its folder, its model config with the saved vocab size)."""
    from nemotron.common.checkpoint_index import pretrained_checkpoint

    found = pretrained_checkpoint(str(Path(ckpt).resolve()), ".")
    if found.meta.get("lora") is not None:
        raise HFInputError(
            f"{found.path} holds LoRA adapters only: export them with export-hf --adapter (PEFT format), "
            "or merge-lora them and export the merged checkpoint"
        )
    root = Path(found.path).parent
    model = checkpoint_model(root, option, overrides)
    model.vocab_size = ours.saved_shapes(found.path)["embedding.word_embeddings.weight"][0]
    return found, root, model


def load_model(found: Any, model: Any) -> Any:
    """Our model of config `model` at TP=1 with the weights of checkpoint `found`."""
    cfg = ours.run_config(model, 1)
    megatron = ours.build(cfg)
    ours.load(cfg, megatron, found.path)
    return megatron


def _hf_config(model: Any, vocab: int, root: Path) -> Dict[str, Any]:
    config = configmap.hf_from_model(model, vocab)
    source = root / "hf_config.json"
    if source.is_file():  # keep the imported model's token ids and other settings we do not map
        original = json.loads(source.read_text())
        config = {**{k: v for k, v in original.items() if k not in ("torch_dtype", "dtype")}, **config}
    return config


def write_weights(found_path: str, model: Any, out: Path, max_shard_bytes: int) -> Dict[str, str]:
    """Every mapped tensor of checkpoint `found_path` into safetensors shards under `out`, loading
    one layer group at a time; the weight map."""
    writer = ShardWriter(out, max_shard_bytes)
    total = sum(len(rule.theirs) for _, rules in mapping.groups(model) for rule in rules)
    with Progress("export-hf", total=total, unit="tensors") as progress:
        for rules, loaded in streaming.load_groups(found_path, model):
            for rule in rules:
                for name, tensor in zip(rule.theirs, rule.split(loaded.pop(rule.ours)), strict=True):
                    writer.add(name, tensor.clone())
                    progress.update()
        return writer.close()


def _register(out: Path, found_path: str, registry: Optional[str], record: Dict[str, Any]) -> Dict[str, Any]:
    from nemotron.tracking.registry import DEFAULT_REGISTRY, Registry, content_hash, ref_of

    reg = Registry(registry or DEFAULT_REGISTRY)
    source = reg.find_path(str(Path(found_path).resolve()))
    inputs = [ref_of(source)] if source else []
    return reg.register(
        f"hf/{out.name}",
        "model",
        out,
        content_hash([out]),
        {"run_dir": None},
        inputs=inputs,
        note=f"exported from {found_path}",
        **record,
    )


def export_hf(
    ckpt: str,
    out: str,
    option: Optional[str] = None,
    overrides: Optional[List[str]] = None,
    overwrite: bool = False,
    verify: bool = False,
    registry: Optional[str] = None,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> Dict[str, Any]:
    """Export checkpoint `ckpt`; the export record (incl. the verification when asked)."""
    found, root, model = checkpoint_and_model(ckpt, option, overrides or [])
    problems = configmap.exportable(model)
    if problems:
        raise HFInputError(f"{found.path} cannot be exported:\n" + "\n".join(problems))
    out_dir = Path(out).resolve()
    refuse_existing(out_dir, overwrite)
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{secrets.token_hex(4)}")
    tmp.mkdir(parents=True)
    write_weights(found.path, model, tmp, max_shard_bytes)
    tokenizer_files = copy_tokenizer(root, tmp) or copy_run_tokenizer(root, tmp)
    config = _hf_config(model, model.vocab_size, root)
    if not (root / "hf_config.json").is_file() and eos_id(tmp) is not None:  # an imported model keeps its ids
        config["eos_token_id"] = eos_id(tmp)
    (tmp / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    record = {"source_checkpoint": found.path, "tokenizer_files": tokenizer_files}
    if (root / IMPORT_RECORD).is_file():
        record["imported_from"] = json.loads((root / IMPORT_RECORD).read_text())["source"]
    if verify:
        from nemotron.hf.verify import compare

        record["verify"] = compare(load_model(found, model), str(tmp), model.vocab_size)
    (tmp / EXPORT_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    _register(out_dir, found.path, registry, record)
    return record
