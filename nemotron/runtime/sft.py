"""Supervised fine-tuning: the pretraining loop (`pretrain.run`) with chat data and pretrained weights.

What differs from pretraining, as one `pretrain.Stage`:
- data: packed chat bins (nemotron/runtime/sft_data.py), loss only on assistant tokens;
- loss: Megatron's per-token mode (`calculate_per_token_loss`): masked token losses summed over
  the global batch and divided by its number of loss tokens, however they spread over
  micro-batches and data-parallel ranks;
- packing: samples never see each other. Attention gets a block-diagonal causal mask (local layer
  spec); RoPE depends only on relative positions inside a block, so it equals positions restarting
  at each sample; Mamba-2 layers mix each sample on its own (`mamba2.packed_samples`);
- weights: `checkpoint.pretrained` (`newest:<recipe>`, a checkpoint dir or an iter_N folder) on a
  fresh start, with a fresh optimizer and schedule; a resumed SFT run loads its own checkpoint
  instead (bitwise, like pretraining). `checkpoint.pretrained=null` starts from random weights.
Checkpoints, validation, tracking, progress line and preemption are the pretraining loop's own.
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Tuple

import torch

from nemotron.runtime import checkpoint, pretrain, sft_data
from nemotron.common.checkpoint_index import PretrainedNotFound, pretrained_checkpoint


def _str(value: Any) -> str:
    return str(getattr(value, "value", value))


def _has_mamba(cfg: Any) -> bool:
    from nemotron.common.hybrid_pattern import hybrid_pattern

    return _str(cfg.model.arch) == "hybrid" and "M" in hybrid_pattern(cfg.model)


def _configure(cfg: Any, config: Any) -> None:
    """Per-token loss over the global batch; refuse layer specs that would leak across samples."""
    from nemotron.runtime.model import mamba_mixer_class, use_te_spec

    if use_te_spec(cfg):
        raise NotImplementedError(
            "packed SFT on the Transformer Engine layer spec needs PackedSeqParams (thd) wiring, "
            "which this version does not have; run SFT where Transformer Engine is not installed")
    if _has_mamba(cfg) and mamba_mixer_class().__name__ != "TorchMamba2Mixer":
        raise NotImplementedError(
            "packed SFT with mamba_ssm's MambaMixer needs its packed-sequence path, not wired here; "
            "the pure-PyTorch mixer (nemotron.runtime.mamba2) resets state at sample boundaries")
    config.calculate_per_token_loss = True


def _init_weights(cfg: Any, model: Any) -> None:
    value = cfg.checkpoint.get("pretrained")
    if value is None:
        pretrain._say(_rank(), "checkpoint.pretrained=null: SFT starts from random weights")
        return
    found = pretrained_checkpoint(str(value), str(cfg.paths.output_root))
    checkpoint.load_weights(found, cfg, model)


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_initialized() else 0


def _datasets(cfg: Any, attention_mask: bool) -> Tuple[Any, Any, Any]:
    # The block-diagonal mask is what keeps packed samples apart: always built.
    return sft_data.build_sft_datasets(cfg, attention_mask=True)


def forward_step(data_iterator: Iterator, model: Any) -> Tuple[torch.Tensor, Callable]:
    """One packed micro-batch forward: block-diagonal attention, per-sample Mamba state."""
    from nemotron.runtime.mamba2 import packed_samples

    batch = next(data_iterator)
    segments = batch.pop("segment_ids")
    if torch.cuda.is_available():
        batch = {k: v.cuda(non_blocking=True) for k, v in batch.items()}
        segments = segments.cuda(non_blocking=True)
    with packed_samples(segments):  # read by Mamba-2 layers only
        output = model(batch["tokens"], batch["position_ids"], batch["attention_mask"],
                       labels=batch["labels"])
    return output, partial(pretrain.loss_func, batch["loss_mask"])


SFT = pretrain.Stage("sft", datasets=_datasets, forward_step=forward_step, configure=_configure,
                     init_weights=_init_weights)
"""The SFT stage of the shared loop."""


def with_inputs_resolved(cfg: Any, tiny_manifest: Callable[[Any], Path] = sft_data.tiny_manifest_path) -> Any:
    """`cfg` with `data.packed_file` and `checkpoint.pretrained` set to the paths this run reads,
    so the tracker records them as the run's lineage inputs (nemotron.tracking.lineage);
    `tiny_manifest(cfg)` is where the generated data's manifest lies (data.generate_tiny)."""
    from omegaconf import DictConfig, open_dict

    if not isinstance(cfg, DictConfig):
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        if cfg.data.generate_tiny:
            cfg.data.packed_file = str(tiny_manifest(cfg).resolve())
        value = cfg.checkpoint.get("pretrained")
        if value:
            try:
                cfg.checkpoint.pretrained = str(Path(pretrained_checkpoint(
                    str(value), str(cfg.paths.output_root)).path).resolve())
            except PretrainedNotFound:  # said in one line when the weights are needed (fresh start)
                pass
    return cfg


def run(cfg: Any) -> pretrain.TrainResult:
    """Fine-tune `cfg.train.steps` steps; see `pretrain.run` for resume, summary and tracking."""
    return pretrain.run(with_inputs_resolved(cfg), SFT)
