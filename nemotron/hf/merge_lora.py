"""`python -m nemotron.checkpoint merge-lora <adapters> <out>`: adapters folded into their base, written as
a full checkpoint (out/iter_0000000, with model.yaml beside it) that export-hf and
`checkpoint.pretrained` read as any checkpoint.

The adapters' marker names their base (path and hash: refused when the base changed) and the LoRA
settings and the model config. The model
is built at TP=1 (Megatron reshards any saved layout), the base loaded, wrapped, the adapters loaded,
then `lora.merge` adds (alpha / r) B A to every adapted weight. The output is registered in the
artifact registry (`--registry`, default outputs/artifacts.json) as `model/<out name>` with the
adapters' and the base's artifacts as its lineage inputs (base -> adapters -> merged).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from omegaconf import OmegaConf

from nemotron.common.checkpoint_index import CheckpointError, Found, pretrained_checkpoint
from nemotron.common.progress import Progress


def lora_run_config(found: Found) -> Any:
    """The TP=1 run config (model, LoRA settings) of adapters checkpoint `found`, its base checked."""
    from nemotron.hf import megatron_side as ours
    from nemotron.runtime.peft import adapters as records

    record = found.meta.get("lora")
    if record is None:
        raise CheckpointError(f"{found.path} holds no LoRA adapters (its marker has no `lora` record)")
    model_cfg = ours.model_config(None, [], base=record["model"])
    base = record["base"]
    if base is not None:
        records.check_base(found, {"base": base, "base_hash": records.base_hash(base, 0)})
        model_cfg.vocab_size = ours.saved_shapes(base)["embedding.word_embeddings.weight"][0]
    cfg = ours.run_config(model_cfg, 1)
    cfg.peft = {
        "rank": record["rank"],
        "alpha": record["alpha"],
        "dropout": 0.0,
        "method": "lora",
        "target_modules": sorted({t.rsplit(".", 1)[-1] for t in record["targets"]}),
    }
    cfg.train = {"recompute": "none", "seed": 0}  # A's draw is overwritten by the saved A
    cfg.parallel.sequence_parallel = False
    return cfg


def adapted_model(adapters: str) -> Tuple[Any, Any, Found]:
    """(the TP=1 model with base and adapters loaded, its run config, the adapters' checkpoint)."""
    from megatron.core import dist_checkpointing

    from nemotron.hf import megatron_side as ours
    from nemotron.runtime.peft import lora
    from nemotron.runtime.peft import state as adapter_state

    found = pretrained_checkpoint(str(Path(adapters).resolve()), ".")
    cfg = lora_run_config(found)
    record = found.meta["lora"]
    model = ours.build(cfg)
    if record["base"] is not None:
        ours.load(cfg, model, record["base"])
    lora.apply(cfg, model)
    setattr(model, adapter_state.RECORD, record)
    sd = adapter_state.model_sharded_state_dict(model)
    adapter_state.load_model_state(model, dist_checkpointing.load(sd, found.path))
    return model, cfg, found


def _register(out_dir: Path, found: Found, registry: Optional[str]) -> Dict[str, Any]:
    """Register the merged checkpoint as `model/<out name>`, its inputs the adapters' and the base's
    artifacts (those the registry knows; both paths are kept in the manifest either way)."""
    from nemotron.tracking.registry import DEFAULT_REGISTRY, Registry, content_hash, ref_of

    reg = Registry(registry or DEFAULT_REGISTRY)
    record = found.meta["lora"]
    paths = [str(Path(found.path).resolve())] + ([record["base"]] if record["base"] else [])
    inputs = [ref_of(entry) for entry in (reg.find_path(p) for p in paths) if entry is not None]
    return reg.register(
        f"model/{out_dir.name}",
        "model",
        out_dir.resolve(),
        content_hash([out_dir]),
        {"run_dir": None},
        inputs=inputs,
        note=f"LoRA adapters {found.path} merged into their base {record['base']}",
        adapters=found.path,
        base=record["base"],
        base_hash=record["base_hash"],
    )


def merge_lora(adapters: str, out: str, overwrite: bool = False, registry: Optional[str] = None) -> Path:
    """Write base + adapters of checkpoint `adapters` as a full checkpoint under `out` and register it
    (its inputs: the adapters and the base); its iter folder."""
    from nemotron.hf import megatron_side as ours
    from nemotron.hf.importer import MODEL_YAML, refuse_existing
    from nemotron.runtime.peft import lora

    out_dir = Path(out)
    refuse_existing(out_dir, overwrite)
    with Progress("merge-lora", total=3, unit="phases") as progress:  # load, merge, save: each long on a big model
        model, cfg, found = adapted_model(adapters)
        progress.update()
        lora.merge(model)
        delattr(model, "nemotron_lora")
        progress.update()
        path = ours.save(cfg, model, out_dir, {"merged_from": {"adapters": found.path, **found.meta["lora"]}})
        (out_dir / MODEL_YAML).write_text(OmegaConf.to_yaml(cfg.model))
        progress.update()
    if os.environ.get("RANK", "0") == "0":
        _register(out_dir, found, registry)
    return path
