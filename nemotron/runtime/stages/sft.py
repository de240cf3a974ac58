"""Supervised fine-tuning: the shared loop (`nemotron.runtime.train.loop`) with chat data and
pretrained weights.

What differs from pretraining, as one `Stage` (`SFTStage`):
- data: packed chat bins (nemotron/runtime/data/sft.py), loss only on assistant tokens;
- loss: Megatron's per-token mode (`calculate_per_token_loss`): masked token losses summed over
  the global batch and divided by its number of loss tokens, however they spread over
  micro-batches and data-parallel ranks;
- packing: samples never see each other. Attention gets a block-diagonal causal mask (local layer
  spec); RoPE depends only on relative positions inside a block, so it equals positions restarting
  at each sample; Mamba-2 layers mix each sample on its own (`model.packed.packed_seq_params`, the
  explicit argument Megatron passes every layer);
- weights: `checkpoint.pretrained` (`newest:<recipe>`, a checkpoint dir or an iter_N folder) on a
  fresh start, with a fresh optimizer and schedule; a resumed SFT run loads its own checkpoint
  instead (bitwise, like pretraining). `checkpoint.pretrained=null` starts from random weights.
Checkpoints, validation, tracking, progress line and preemption are the loop's own.
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Tuple

import torch

from nemotron.common.hybrid_pattern import hybrid_pattern
from nemotron.runtime.data import sft as sft_data
from nemotron.runtime.model.build import mamba_mixer_class, use_te_spec
from nemotron.runtime.model.packed import packed_seq_params
from nemotron.runtime.stages.pretrained import load_pretrained, pretrained_source, with_pretrained_path
from nemotron.runtime.train import loop, step
from nemotron.runtime.train.contract import Stage, TrainResult


def has_mamba(cfg: Any) -> bool:
    """Whether the model has Mamba layers (which need the packed samples' boundaries)."""
    return str(getattr(cfg.model.arch, "value", cfg.model.arch)) == "hybrid" and "M" in hybrid_pattern(cfg.model)


def configure_packed(cfg: Any, config: Any) -> None:
    """Per-token loss over the global batch; refuse layer specs that would leak across samples."""
    if use_te_spec(cfg):
        raise NotImplementedError(
            "packed SFT on the Transformer Engine layer spec needs PackedSeqParams (thd) wiring, "
            "which this version does not have; run SFT where Transformer Engine is not installed"
        )
    if has_mamba(cfg) and mamba_mixer_class().__name__ != "TorchMamba2Mixer":
        raise NotImplementedError(
            "packed SFT with mamba_ssm's MambaMixer needs its packed-sequence path, not wired here; "
            "the pure-PyTorch mixer (nemotron.runtime.model.mamba2) resets state at sample boundaries"
        )
    config.calculate_per_token_loss = True


def with_inputs_resolved(cfg: Any, tiny_manifest: Callable[[Any], Path] = sft_data.tiny_manifest_path) -> Any:
    """`cfg` with `data.packed_file` and `checkpoint.pretrained` set to the paths this run reads,
    so the tracker records them as the run's lineage inputs (nemotron.tracking.lineage);
    `tiny_manifest(cfg)` is where the generated data's manifest lies (data.generate_tiny)."""
    from omegaconf import DictConfig, open_dict

    if not isinstance(cfg, DictConfig):
        return cfg
    cfg = copy.deepcopy(cfg)
    if cfg.data.generate_tiny:
        with open_dict(cfg):
            cfg.data.packed_file = str(tiny_manifest(cfg).resolve())
    return with_pretrained_path(cfg)


def packed_forward(batch: dict, model: Any) -> Tuple[dict, Any]:
    """`model` on a packed batch (segment_ids popped): block-diagonal attention, the samples as
    packed_seq_params for the Mamba layers; (the batch on the model's device, the token losses)."""
    segments = batch.pop("segment_ids")
    if torch.cuda.is_available():
        batch = {k: v.cuda(non_blocking=True) for k, v in batch.items()}
        segments = segments.cuda(non_blocking=True)
    params = packed_seq_params(segments)
    output = model(
        batch["tokens"],
        batch["position_ids"],
        batch.get("attention_mask"),
        labels=batch["labels"],
        packed_seq_params=params,
    )
    return batch, output


class SFTStage(Stage):
    """The SFT stage of the shared loop."""

    name = "sft"

    def resolve_inputs(self, cfg: Any) -> Any:
        return with_inputs_resolved(cfg)

    def datasets(self, cfg: Any, attention_mask: bool) -> Tuple[Any, Any, Optional[Any]]:
        # The block-diagonal mask is what keeps packed samples apart: always built.
        return sft_data.build_sft_datasets(cfg, attention_mask=True)

    def configure(self, cfg: Any, config: Any) -> None:
        configure_packed(cfg, config)

    def init_weights(self, cfg: Any, model: Any) -> None:
        load_pretrained(cfg, model, pretrained_source(cfg), "SFT")

    def forward_step(self, data_iterator: Iterator, model: Any) -> Tuple[torch.Tensor, Callable]:
        """One packed micro-batch forward: block-diagonal attention, per-sample Mamba state."""
        batch, output = packed_forward(next(data_iterator), model)
        return output, partial(step.loss_func, batch["loss_mask"])


def run(cfg: Any) -> TrainResult:
    """Fine-tune `cfg.train.steps` steps; see `nemotron.runtime.train.loop.run`."""
    return loop.run(cfg, SFTStage())
