"""`python -m nemotron.checkpoint average <ckpt>... <out> [--weights w ...]`: the element-wise (weighted)
mean of the model weights of checkpoints of one model (e.g. the stable phase of a WSD schedule),
written as a weights-only checkpoint (out/iter_0000000, model.yaml beside it when the first
checkpoint's model is known) that `checkpoint.pretrained` and export-hf read.

Every checkpoint is read as global tensors (torch_dist stores each tensor's global shape, so any
TP/PP layout a checkpoint was saved with gives the same tensors); optimizer state is left out. The
mean is taken in float64 and cast back to each tensor's dtype. Checkpoints with different tensors or
shapes are refused, the tensor named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from nemotron.common.checkpoint_index import CheckpointError, Found, pretrained_checkpoint
from nemotron.common.progress import Progress

STEP = 0
"""An averaged checkpoint is step 0 of its folder: iter_0000000."""


def model_tensors(path: str) -> Dict[str, tuple]:
    """Global shape of every model tensor of the checkpoint at `path` (optimizer state left out)."""
    from nemotron.hf.megatron_side import saved_shapes

    return {k: v for k, v in saved_shapes(path).items() if not k.startswith("optimizer.")}


def check_same_model(found: Sequence[Found]) -> Dict[str, tuple]:
    """The shared tensors and shapes of `found`; refuse a missing tensor or another shape, named."""
    first = model_tensors(found[0].path)
    for other in found[1:]:
        shapes = model_tensors(other.path)
        for key in sorted(set(first) | set(shapes)):
            if first.get(key) != shapes.get(key):
                raise CheckpointError(
                    f"tensor {key!r} has shape {first.get(key)} in {found[0].path} but {shapes.get(key)} in "
                    f"{other.path}: only checkpoints of one model can be averaged"
                )
    return first


def weights_of(count: int, weights: Optional[List[float]]) -> List[float]:
    """Normalised weights (equal when none are given); refuse a wrong count or a non-positive sum."""
    weights = list(weights) if weights else [1.0] * count
    if len(weights) != count or sum(weights) <= 0:
        raise CheckpointError(
            f"--weights: {len(weights)} weights summing to {sum(weights)} for {count} "
            "checkpoints; give one weight per checkpoint, with a positive sum"
        )
    return [w / sum(weights) for w in weights]


def mean_tensor(key: str, shape: tuple, found: Sequence[Found], weights: Sequence[float]) -> torch.Tensor:
    """The weighted mean of tensor `key` over the checkpoints `found`."""
    from nemotron.hf.dcp_compat import read_region

    total, dtype = None, None
    for one, weight in zip(found, weights, strict=True):
        tensor = read_region(one.path, key, [0] * len(shape), shape)
        dtype = tensor.dtype
        part = tensor.double() * weight
        total = part if total is None else total + part
    return total.to(dtype)


def average(
    checkpoints: Sequence[str], out: str, weights: Optional[List[float]] = None, overwrite: bool = False
) -> Path:
    """Write the (weighted) mean of `checkpoints` under `out`; the iter folder written."""
    import torch.distributed as dist
    from megatron.core.dist_checkpointing.mapping import ShardedTensor
    from omegaconf import OmegaConf

    from nemotron.hf import megatron_side as ours
    from nemotron.hf.importer import MODEL_YAML, refuse_existing
    from nemotron.runtime.checkpoint import store
    from nemotron.runtime.train import distributed

    if len(checkpoints) < 2:
        raise CheckpointError(f"average: {len(checkpoints)} checkpoint given; name two or more")
    out_dir = Path(out)
    refuse_existing(out_dir, overwrite)
    found = [pretrained_checkpoint(str(Path(c).resolve()), ".") for c in checkpoints]
    shapes = check_same_model(found)
    norm = weights_of(len(found), weights)
    distributed.init(ours.run_config(OmegaConf.create({}), 1))
    rank = dist.get_rank()  # every rank holds every tensor; rank 0's copy is the one written
    sd = {}
    with Progress("average", total=len(shapes), unit="tensors", quiet=rank != 0) as progress:
        for key, shape in shapes.items():
            sd[key] = ShardedTensor.from_rank_offsets(key, mean_tensor(key, shape, found, norm), replica_id=rank)
            progress.update()
    meta = {"averaged_from": [f.path for f in found], "weights": norm}
    path = store.write_weights({"model": sd}, str(out_dir), STEP, meta)
    _copy_model_yaml(Path(found[0].path).parent, out_dir / MODEL_YAML)
    return path


def _copy_model_yaml(root: Path, target: Path) -> None:
    from omegaconf import OmegaConf

    from nemotron.hf.exporter import checkpoint_model
    from nemotron.hf.st_files import HFInputError

    try:
        target.write_text(OmegaConf.to_yaml(checkpoint_model(root, None, [])))
    except HFInputError:
        pass  # no model known: export-hf then needs model=<option>
