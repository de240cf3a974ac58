"""`export-hf --adapter`: a LoRA adapter checkpoint (`peft=lora`) -> Hugging Face PEFT format.

Writes `adapter_config.json` and `adapter_model.safetensors` as the `peft` library saves a LoRA of a
`LlamaForCausalLM` (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`, ...), which
`peft.PeftModel.from_pretrained` loads on top of the base exported with `export-hf`. Only the
adapters are read (the model is built on the meta device, A and B read from the checkpoint files at
full size, any TP layout). Our fused layers are split the way `export-hf` splits their base weights
(`nemotron/hf/mapping.py`): B of `linear_qkv` by rows into q/k/v (interleaved per query group), B of
SwiGLU's `linear_fc1` into gate/up halves, each part with the same A (x -> B A x splits by output
rows). The scale is peft's own, `lora_alpha / r`. The gpt (Llama) mapping only: a hybrid model's
adapters are refused (merge them and `export-hf` the merged checkpoint).
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from nemotron.hf import configmap, mapping
from nemotron.hf.importer import refuse_existing
from nemotron.hf.st_files import HFInputError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
EXPORT_RECORD = "nemotron_export.json"
PEFT_PREFIX = "base_model.model."
"""peft's prefix of a wrapped model's tensor names (PeftModel.base_model.model)."""


def _adapter_tensors(found: Any, cfg: Any) -> Dict[str, torch.Tensor]:
    """{local-spec name of A or B: full tensor} of checkpoint `found` (base built on meta)."""
    from nemotron.hf import streaming
    from nemotron.runtime.peft import lora

    model = streaming.build_meta(cfg)
    lora.apply(cfg, model)
    sd = model.sharded_state_dict()
    return {key: streaming._load(found.path, value) for key, value in sd.items() if ".adapter.linear_" in key}


def peft_tensors(tensors: Dict[str, torch.Tensor], model_cfg: Any) -> Dict[str, torch.Tensor]:
    """Our A/B tensors under peft's names, fused layers split as the base weights are."""
    rules = {rule.ours: rule for _, group in mapping.groups(model_cfg) for rule in group}
    out: Dict[str, torch.Tensor] = {}
    for key in sorted(k for k in tensors if k.endswith(".adapter.linear_in.weight")):
        layer = key[: -len(".adapter.linear_in.weight")]
        a, b = tensors[key], tensors[f"{layer}.adapter.linear_out.weight"]
        rule = rules.get(f"{layer}.weight")
        if rule is None:
            raise HFInputError(f"adapter on {layer}: no Hugging Face tensor maps that layer")
        for name, part in zip(rule.theirs, rule.split(b), strict=True):
            stem = PEFT_PREFIX + name[: -len(".weight")]
            out[f"{stem}.lora_A.weight"] = a.detach().clone().contiguous()  # each part its own copy of A
            out[f"{stem}.lora_B.weight"] = part.detach().clone().contiguous()
    return out


def adapter_config(record: Dict[str, Any], names: Any, base_model: Optional[str]) -> Dict[str, Any]:
    """The `adapter_config.json` peft's LoraConfig reads."""
    targets = sorted({n.rsplit(".", 3)[-3] for n in names})
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": int(record["rank"]),
        "lora_alpha": float(record["alpha"]),
        "lora_dropout": 0.0,
        "target_modules": targets,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "init_lora_weights": True,
        "inference_mode": True,
    }


def _register(out: Path, found_path: str, registry: Optional[str], record: Dict[str, Any]) -> Dict[str, Any]:
    from nemotron.tracking.registry import DEFAULT_REGISTRY, Registry, content_hash, ref_of

    reg = Registry(registry or DEFAULT_REGISTRY)
    source = reg.find_path(str(Path(found_path).resolve()))
    return reg.register(
        f"hf/{out.name}",
        "adapters",
        out,
        content_hash([out]),
        {"run_dir": None},
        inputs=[ref_of(source)] if source else [],
        note=f"LoRA adapters exported in PEFT format from {found_path}",
        **record,
    )


def export_adapters(
    ckpt: str,
    out: str,
    base_model: Optional[str] = None,
    overwrite: bool = False,
    registry: Optional[str] = None,
) -> Dict[str, Any]:
    """Export the adapters of checkpoint `ckpt` in PEFT format to `out`; the export record."""
    from safetensors.torch import save_file

    from nemotron.common.checkpoint_index import pretrained_checkpoint
    from nemotron.hf.merge_lora import lora_run_config

    found = pretrained_checkpoint(str(Path(ckpt).resolve()), ".")
    record = found.meta.get("lora")
    if record is None:
        raise HFInputError(f"{found.path} holds no LoRA adapters (saved without peft=lora); export it with export-hf")
    arch = str(record["model"].get("arch"))
    if arch != "gpt":
        raise HFInputError(
            f"{found.path}: adapters of a {arch} model; the PEFT export covers the gpt/Llama mapping "
            "(LlamaForCausalLM) only: merge-lora them and export-hf the merged checkpoint"
        )
    cfg = lora_run_config(found)
    if cfg.model.vocab_size is None:  # adapters of a randomly initialised base: no embedding is read
        cfg.model.vocab_size = 128
    problems = configmap.exportable(cfg.model)
    if problems:
        raise HFInputError(f"{found.path} cannot be exported: " + "; ".join(problems))
    out_dir = Path(out).resolve()
    refuse_existing(out_dir, overwrite)
    tensors = peft_tensors(_adapter_tensors(found, cfg), cfg.model)
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{secrets.token_hex(4)}")
    tmp.mkdir(parents=True)
    save_file(tensors, str(tmp / ADAPTER_WEIGHTS), {"format": "pt"})
    config = adapter_config(record, tensors, base_model)
    (tmp / ADAPTER_CONFIG).write_text(json.dumps(config, indent=1) + "\n")
    export = {"source_checkpoint": found.path, "base": record["base"], "base_hash": record["base_hash"]}
    (tmp / EXPORT_RECORD).write_text(json.dumps(export, indent=1) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    _register(out_dir, found.path, registry, export)
    return export
