"""Our side of a conversion: the model option as a config, the Megatron model, its checkpoint.

`model_config(option, overrides)` reads `conf/model/<option>.yaml` over the schema's ModelConfig (as
`model=<option> model.x=y` would compose); `build(model, tp)` sets up a world (one process, or the
torchrun one) and builds the model `nemotron.runtime.model.build` builds for training; `save()` writes it
as an `iter_0000000` checkpoint (the same folder and marker as a training save, model weights only)
and `load()` reads one into a built model. `fill()` copies full-size tensors into this rank's
tensor-parallel shard of each parameter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from nemotron.hf.mapping import canonical, mamba_parts
from nemotron.hf.st_files import HFInputError

IMPORT_STEP = 0
"""An imported checkpoint is step 0 of its folder: iter_0000000."""


def model_config(option: Optional[str], overrides: List[str], base: Optional[Dict[str, Any]] = None) -> DictConfig:
    """ModelConfig <- conf/model/<option>.yaml (or `base`) <- `model.key=value` overrides."""
    from nemotron.common.paths import CONF_DIR
    from nemotron.config.schema import ModelConfig

    cfg = OmegaConf.structured(ModelConfig)
    if option:
        path = CONF_DIR / "model" / f"{option}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml")))
            raise HFInputError(f"model={option}: no {path}; options: {known}")
        cfg = OmegaConf.merge(cfg, OmegaConf.load(path))
    if base:
        cfg = OmegaConf.merge(cfg, base)
    dots = [o[len("model.") :] for o in overrides]
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(dots)) if dots else cfg


def run_config(model: DictConfig, tp: int = 1) -> DictConfig:
    """The slice of a run config that building, saving and loading a model reads."""
    from nemotron.config.schema import CheckpointConfig, ParallelConfig

    parallel = OmegaConf.merge(OmegaConf.structured(ParallelConfig), {"tensor_model_parallel_size": tp})
    cfg = OmegaConf.create(
        {
            "model": model,
            "parallel": parallel,
            "train": {"recompute": "none"},
            "checkpoint": OmegaConf.structured(CheckpointConfig),
        }
    )
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=False, enum_to_str=True))


def build(cfg: DictConfig, seed: int = 1234) -> Any:
    """The unwrapped Megatron model of `cfg` on this rank (the world is set up on first use)."""
    from nemotron.runtime import cpu_compat
    from nemotron.runtime.model import build as model_lib
    from nemotron.runtime.train import distributed

    distributed.init(cfg)
    cpu_compat.seed_model_parallel(seed)
    model, _ = model_lib.build_model(cfg, int(cfg.model.vocab_size))
    return model


def tp_layout() -> tuple:
    from megatron.core import parallel_state

    return (parallel_state.get_tensor_model_parallel_world_size(), parallel_state.get_tensor_model_parallel_rank())


def shard(key: str, full: torch.Tensor, local_shape: torch.Size, parts: Optional[List[int]] = None) -> torch.Tensor:
    """This rank's piece of `full` for a parameter of `local_shape`; a stacked tensor (fc1's gate
    and up, Mamba's in_proj z/x/B/C/dt) is split part by part, as Megatron shards it."""
    if tuple(full.shape) == tuple(local_shape):
        return full
    size, rank = tp_layout()
    dims = [d for d, (a, b) in enumerate(zip(full.shape, local_shape, strict=True)) if a != b]
    if len(dims) != 1 or full.shape[dims[0]] != local_shape[dims[0]] * size:
        raise HFInputError(
            f"tensor {key!r}: shape {tuple(full.shape)} does not fit {tuple(local_shape)} x tensor parallel {size}"
        )
    dim = dims[0]
    pieces = torch.split(full, parts, dim=dim) if parts else [full]
    return torch.cat([torch.chunk(p, size, dim=dim)[rank] for p in pieces], dim=dim)


def parts_of(key: str, model: Any, rule_parts: int, full: torch.Tensor) -> Optional[List[int]]:
    """Block sizes of a stacked tensor on its sharded dim (None: not stacked)."""
    for suffix, sizes in (mamba_parts(model) if str(model.arch) == "hybrid" else {}).items():
        if key.endswith(suffix):
            return sizes
    if rule_parts > 1:
        return [full.shape[0] // rule_parts] * rule_parts
    return None


def local_params(model: Any) -> Dict[str, torch.Tensor]:
    """This rank's parameters and buffers by local-spec name (no `_extra_state`)."""
    from megatron.core.utils import unwrap_model

    sd = unwrap_model(model).state_dict(keep_vars=True)
    return {canonical(k): v for k, v in sd.items() if not k.endswith("_extra_state") and torch.is_tensor(v)}


def save(cfg: DictConfig, model: Any, out_dir: Path, meta: Dict[str, Any], model_sd: Optional[Dict] = None) -> Path:
    """Write the model weights (or `model_sd`, its sharded state dict) as out_dir/iter_0000000
    (all ranks call this)."""
    from megatron.core.utils import unwrap_model

    from nemotron.runtime.checkpoint import fit as checkpoint_fit
    from nemotron.runtime.checkpoint import store as checkpoint

    sd = {"model": model_sd if model_sd is not None else unwrap_model(model).sharded_state_dict()}
    return checkpoint.write_weights(sd, str(out_dir), IMPORT_STEP, {**meta, "layout": checkpoint_fit.layout(cfg)})


def load(cfg: DictConfig, model: Any, ckpt: str) -> None:
    """Load the weights of checkpoint `ckpt` (a folder of iter_N, or one iter_N) into `model`."""
    from nemotron.common.checkpoint_index import pretrained_checkpoint
    from nemotron.runtime.checkpoint import store as checkpoint

    checkpoint.load_weights(pretrained_checkpoint(ckpt, "."), cfg, model)


def saved_shapes(found_path: str) -> Dict[str, tuple]:
    """Global shape of every tensor in a dist checkpoint (reads metadata only)."""
    from megatron.core import dist_checkpointing

    return {k: tuple(v.global_shape) for k, v in dist_checkpointing.load_tensors_metadata(found_path).items()}


def logits(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """[batch, seq, vocab] fp32 logits of our model on `tokens` (causal, no padding)."""
    b, s = tokens.shape
    position_ids = torch.arange(s).unsqueeze(0).expand(b, s)
    mask = ~torch.tril(torch.ones(1, 1, s, s, dtype=torch.bool))
    model.eval()
    with torch.no_grad():
        out = model(tokens, position_ids, mask)
    return _gather_vocab(out.float())


def _gather_vocab(out: torch.Tensor) -> torch.Tensor:
    from megatron.core import tensor_parallel

    if tp_layout()[0] == 1:
        return out
    return tensor_parallel.gather_from_tensor_model_parallel_region(out)
