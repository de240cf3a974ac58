"""Does a checkpoint fit this run, and if not, why: named before Megatron's own load fails.

`layout(cfg)` is what a checkpoint's marker records of the parallel layout it was saved with (RNG
states only fit the same layout). `check_fits` compares every sharded tensor the run expects with
the checkpoint's metadata and raises a `CheckpointError` naming the first that is missing or has
another shape, with `why`: a changed layout (and what Megatron reshards), the padded vocabulary, the
distributed optimizer's format, or another model.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator

import torch.distributed as dist

from nemotron.common.checkpoint_index import CheckpointError, Found


def layout(cfg: Any) -> Dict[str, Any]:
    """The parallel layout a checkpoint was saved with (RNG states only fit the same layout)."""
    p = cfg.parallel
    world = dist.get_world_size() if dist.is_initialized() else 1
    return {
        "world_size": world,
        "tp": p.tensor_model_parallel_size,
        "pp": p.pipeline_model_parallel_size,
        "cp": p.context_parallel_size,
        "ep": p.expert_model_parallel_size,
        "distributed_optimizer": bool(p.use_distributed_optimizer),
    }


def layout_text(lay: Dict[str, Any]) -> str:
    return (
        f"world {lay['world_size']} TP{lay['tp']} PP{lay['pp']} CP{lay['cp']} EP{lay['ep']}"
        f"{' (distributed optimizer)' if lay.get('distributed_optimizer') else ''}"
    )


def sharded_tensors(sd: Dict[str, Any]) -> Iterator[Any]:
    """Every ShardedTensor of `sd`, factories built (what the load will look up)."""
    from megatron.core.dist_checkpointing.dict_utils import nested_values
    from megatron.core.dist_checkpointing.mapping import ShardedTensor, ShardedTensorFactory

    for value in nested_values(sd):
        if isinstance(value, ShardedTensorFactory):
            built = value.build()
            yield from (
                v for v in nested_values(built if isinstance(built, dict) else [built]) if isinstance(v, ShardedTensor)
            )
        elif isinstance(value, ShardedTensor):
            yield value


def check_fits(sd: Dict[str, Any], found: Found, cfg: Any) -> None:
    """Raise a one-paragraph CheckpointError naming the first tensor that does not fit."""
    from megatron.core import dist_checkpointing

    saved = dist_checkpointing.load_tensors_metadata(found.path)
    for ten in sharded_tensors(sd):
        if ten.key not in saved:
            problem = f"tensor {ten.key!r} is not in the checkpoint"
        elif tuple(saved[ten.key].global_shape) != tuple(ten.global_shape):
            problem = (
                f"tensor {ten.key!r} has shape {tuple(saved[ten.key].global_shape)} in the "
                f"checkpoint but this run expects {tuple(ten.global_shape)}"
            )
        else:
            continue
        raise CheckpointError(
            f"checkpoint {found.path} does not fit this run: {problem}. {why(found, cfg, ten.key, saved.get(ten.key))}"
        ) from None


def why(found: Found, cfg: Any, key: str, saved: Any) -> str:
    was, now = found.meta.get("layout", {}), layout(cfg)
    if was and was != now:
        text = (
            f"It was saved with {layout_text(was)} and this run uses {layout_text(now)}; "
            "Megatron reshards tensor/pipeline/data parallel splits, but not shapes that "
            "depend on the layout"
        )
        if saved is not None and ("word_embeddings" in key or "output_layer" in key):
            text += (
                f" (the vocabulary is padded to model.make_vocab_size_divisible_by x TP: set "
                f"model.vocab_size={saved.global_shape[0]} to load it)"
            )
        if was.get("distributed_optimizer") != now.get("distributed_optimizer"):
            text += "; parallel.use_distributed_optimizer differs"
        elif key.startswith("optimizer.distributed."):
            text = (
                f"It was saved with {layout_text(was)} and this run uses {layout_text(now)}: "
                "the distributed optimizer's state is saved per data-parallel group "
                "(Megatron's dp_reshardable format), which reshards only to another "
                "data-parallel size; resume with the saved TP/PP/CP/EP"
            )
        return text + "."
    return (
        "It was saved from a different model (model.* settings): load it with the model config "
        "it was saved with, or point checkpoint.dir / load_dir / pretrained elsewhere."
    )
