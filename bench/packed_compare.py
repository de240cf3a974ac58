"""Packed SFT against unpacked: each sample's per-token losses in a packed micro-batch, through the SFT
stage's own `packed_forward`, against the same sample run alone (its own row, positions from 0).

    from packed_compare import compare_packed
    figures = compare_packed(cfg, tolerance, init_std=0.1)   # cfg: a resolved gpt/sft or nano3/sft config

The layout is the stage's (`sft.packed_layout(cfg)`): `thd` on the Transformer Engine spec (the rows
laid end to end, `PackedSeqParams(qkv_format="thd")`, mamba_ssm's seq_idx), `sbhd` on the local spec
(block-diagonal mask, the segment-aware Mamba-2 scan). Weights: the seed's random initialisation at
`init_std`, eval mode, no gradients. Compared: the tokens inside the loss mask. A `control` figure
runs the same rows as plain causal sequences (no boundaries): it must exceed the tolerance, else the
comparison could not see a leak across samples and proves nothing.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Tuple

import torch


def layout_of(cfg: Any) -> str:
    """The SFT stage's packed layout for `cfg`."""
    from nemotron.runtime.stages import sft

    return sft.packed_layout(cfg)


def _packed_losses(model: Any, batch: Dict[str, torch.Tensor], layout: str) -> torch.Tensor:
    from nemotron.runtime.stages import sft

    b, s = batch["tokens"].shape
    item = dict(batch)  # packed_forward pops segment_ids
    if "layout" in inspect.signature(sft.packed_forward).parameters:
        _, out = sft.packed_forward(item, model, layout=layout)
    else:  # the sbhd-only version
        _, out = sft.packed_forward(item, model)
    return out.float().reshape(b, s).cpu()


def _causal(n: int, rows: int, local: bool, device: Any) -> Any:
    """The mask of plain causal rows on the local spec (True = masked); TE's spec needs none."""
    if not local:
        return None
    return torch.ones(n, n, dtype=torch.bool, device=device).tril().logical_not()[None, None].expand(rows, 1, n, n)


def _plain_losses(model: Any, tokens: torch.Tensor, labels: torch.Tensor, local: bool) -> torch.Tensor:
    device = next(model.parameters()).device
    rows, n = tokens.shape
    positions = torch.arange(n, device=device)[None].expand(rows, n)
    out = model(tokens.to(device), positions, _causal(n, rows, local, device), labels=labels.to(device))
    return out.float().cpu()


def _samples(batch: Dict[str, torch.Tensor]) -> List[Tuple[int, int, int]]:
    """(row, start, end) of every sample with loss tokens (padding has none)."""
    out = []
    for r, seg in enumerate(batch["segment_ids"]):
        starts = [0, *(torch.nonzero(seg[1:] != seg[:-1]).squeeze(1) + 1).tolist(), len(seg)]
        for a, e in zip(starts[:-1], starts[1:], strict=True):
            if batch["loss_mask"][r, a:e].sum() > 0:
                out.append((r, a, e))
    return out


def _micro_batch(cfg: Any, layout: str, rows: int) -> Tuple[Any, Dict[str, torch.Tensor]]:
    from nemotron.runtime.data import sft as sft_data

    tokenizer, train, _ = sft_data.build_sft_datasets(cfg, attention_mask=layout == "sbhd")
    items = [train[i] for i in range(rows)]
    return tokenizer, {k: torch.stack([it[k] for it in items]) for k in items[0]}


def compare_packed(cfg: Any, tolerance: float, init_std: float) -> Dict[str, Any]:
    """Largest |packed - alone| per-token loss over a micro-batch's samples, with the control; the
    model's weights drawn with `model.init_method_std=init_std`."""
    from omegaconf import OmegaConf

    from nemotron.runtime import cpu_compat
    from nemotron.runtime.model.build import build_model, use_te_spec
    from nemotron.runtime.train import distributed
    from nemotron.runtime.train.setup import set_seed

    cfg = OmegaConf.merge(cfg, {"model": {"init_method_std": init_std}})
    layout, local = layout_of(cfg), not use_te_spec(cfg)
    distributed.init(cfg)
    try:
        cpu_compat.install()
        tokenizer, batch = _micro_batch(cfg, layout, max(2, int(cfg.train.micro_batch_size)))
        set_seed(cfg.train.seed)
        model, _ = build_model(cfg, tokenizer.vocab_size)
        model.eval()
        with torch.no_grad():
            packed = _packed_losses(model, batch, layout)
            control = _plain_losses(model, batch["tokens"], batch["labels"], local)
            diff, leak, sample_diff = 0.0, 0.0, 0.0
            samples = _samples(batch)
            for r, a, e in samples:
                alone = _plain_losses(model, batch["tokens"][r : r + 1, a:e], batch["labels"][r : r + 1, a:e], local)[0]
                mask = batch["loss_mask"][r, a:e] > 0
                diff = max(diff, float((packed[r, a:e] - alone)[mask].abs().max()))
                leak = max(leak, float((control[r, a:e] - alone)[mask].abs().max()))
                sample_diff = max(sample_diff, abs(float(packed[r, a:e][mask].mean() - alone[mask].mean())))
    finally:
        distributed.teardown()
    passed = diff <= tolerance < leak
    why = ""
    if diff > tolerance:
        why = f"packed vs alone: max |per-token loss diff| {diff:.3g} > tolerance {tolerance:g}"
    elif leak <= tolerance:
        why = f"inconclusive: the unpacked control differs by only {leak:.3g} <= tolerance {tolerance:g}"
    return {
        "layout": layout,
        "rows": int(batch["tokens"].shape[0]),
        "samples": len(samples),
        "max_abs_diff": diff,
        "max_sample_mean_diff": sample_diff,
        "control_max_abs_diff": leak,
        "tolerance": tolerance,
        "passed": passed,
        "why": why,
    }
