"""Supervised fine-tuning: the shared loop (`nemotron.runtime.train.loop`) with chat data and
pretrained weights.

What differs from pretraining, as one `Stage` (`SFTStage`):
- data: packed chat bins (nemotron/runtime/data/sft.py), loss only on assistant tokens;
- loss: Megatron's per-token mode (`calculate_per_token_loss`): masked token losses summed over
  the global batch and divided by its number of loss tokens, however they spread over
  micro-batches and data-parallel ranks;
- packing: samples never see each other, on either layer spec (`packed_layout`). Local spec
  (`sbhd`): attention gets a block-diagonal causal mask; RoPE depends only on relative positions
  inside a block, so it equals positions restarting at each sample; Mamba-2 layers mix each sample on
  its own (`model.packed.packed_seq_params`, the explicit argument Megatron passes every layer).
  Transformer Engine spec (`thd`): the rows go in as one sequence with thd `PackedSeqParams`, TE's
  varlen attention and mamba_ssm's `seq_idx` keep the samples apart (`model.packed.thd_packed_seq_params`);
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

from nemotron.common import stack as stacks
from nemotron.runtime.data import sft as sft_data
from nemotron.runtime.model.packed import packed_seq_params, thd_batch, thd_packed_seq_params
from nemotron.runtime.model.stack_check import runtime_stack
from nemotron.runtime.stages.pretrained import load_pretrained, pretrained_source, with_pretrained_path
from nemotron.runtime.train import loop, step
from nemotron.runtime.train.contract import Stage, TrainResult


def packed_layout(cfg: Any) -> str:
    """`thd` (Transformer Engine spec) or `sbhd` (local spec): how this run's packed samples reach the
    model (nemotron.common.stack.packed_layout on the stack this process imports)."""
    return stacks.packed_layout(cfg, runtime_stack(cfg))


def configure_packed(cfg: Any, config: Any) -> None:
    """Per-token loss over the global batch (the layout's guards are compose rules:
    nemotron.config.stack_rules)."""
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


def packed_forward(batch: dict, model: Any, layout: str = "sbhd") -> Tuple[dict, Any]:
    """`model` on a packed batch (segment_ids popped); (the batch on the model's device, the token
    losses [batch, seq]). `sbhd`: block-diagonal attention mask, the samples as sbhd packed_seq_params
    for the Mamba layers; `thd`: the rows as one sequence with thd packed_seq_params (model.packed)."""
    segments = batch.pop("segment_ids")
    if torch.cuda.is_available():
        batch = {k: v.cuda(non_blocking=True) for k, v in batch.items()}
        segments = segments.cuda(non_blocking=True)
    if layout == "thd":
        flat = thd_batch(batch)
        output = model(
            flat["tokens"],
            flat["position_ids"],
            None,
            labels=flat["labels"],
            packed_seq_params=thd_packed_seq_params(segments),
        )
        return batch, output.reshape(segments.shape)
    output = model(
        batch["tokens"],
        batch["position_ids"],
        batch.get("attention_mask"),
        labels=batch["labels"],
        packed_seq_params=packed_seq_params(segments),
    )
    return batch, output


class SFTStage(Stage):
    """The SFT stage of the shared loop."""

    name = "sft"

    def resolve_inputs(self, cfg: Any) -> Any:
        return with_inputs_resolved(cfg)

    layout = "sbhd"
    """How packed samples reach the model (`packed_layout`), set by `configure`."""

    def datasets(self, cfg: Any, attention_mask: bool) -> Tuple[Any, Any, Optional[Any]]:
        # sbhd: the block-diagonal mask is what keeps packed samples apart; thd needs none.
        return sft_data.build_sft_datasets(cfg, attention_mask=packed_layout(cfg) == "sbhd")

    def configure(self, cfg: Any, config: Any) -> None:
        configure_packed(cfg, config)
        self.layout = packed_layout(cfg)

    def init_weights(self, cfg: Any, model: Any) -> None:
        load_pretrained(cfg, model, pretrained_source(cfg), "SFT")

    def forward_step(self, data_iterator: Iterator, model: Any) -> Tuple[torch.Tensor, Callable]:
        """One packed micro-batch forward: samples kept apart in attention and Mamba state."""
        batch, output = packed_forward(next(data_iterator), model, self.layout)
        return output, partial(step.loss_func, batch["loss_mask"])


def run(cfg: Any) -> TrainResult:
    """Fine-tune `cfg.train.steps` steps; see `nemotron.runtime.train.loop.run`."""
    return loop.run(cfg, SFTStage())
