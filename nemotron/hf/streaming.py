"""Shard-by-shard conversion: the model is built on the meta device (no memory), and tensors exist
in memory one layer group at a time.

Import: each converted tensor is written to a scratch file and the meta parameter is replaced by
a tensor memory-mapped from it (`torch.from_file`), so the one `dist_checkpointing.save` that writes
the checkpoint reads pages the kernel can drop again: the process's own (anonymous) memory stays
near one layer group plus the writer's buffers. Export: `dist_checkpointing.load` is asked for one
layer group's tensors at a time (Megatron's checkpoints load partially), which are converted and
handed to the shard writer.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import torch

from nemotron.hf import mapping
from nemotron.hf import megatron_side as ours


def build_meta(cfg: Any) -> Any:
    """The unwrapped model of `cfg` on the meta device (sets up the world on first use)."""
    from nemotron.runtime import cpu_compat
    from nemotron.runtime.model.build import build_unwrapped_model, transformer_config
    from nemotron.runtime.train import distributed

    distributed.init(cfg)
    cpu_compat.seed_model_parallel(1234)
    cpu_compat.install()
    config = transformer_config(cfg)
    config.use_cpu_initialization = True  # weights created without a device: on meta; initialising
    # costs nothing there and sets the tensor-parallel attributes (partition_dim) that fill() reads
    with torch.device("meta"):
        return build_unwrapped_model(cfg, config, int(cfg.model.vocab_size))


def owners(model: Any) -> Dict[str, Tuple[Any, str, bool]]:
    """Local-spec name -> (module, attribute, is_parameter) of every tensor the state dict holds."""
    owners = {}
    for prefix, module in model.named_modules():
        for name, value in list(module._parameters.items()) + list(module._buffers.items()):
            if value is not None:
                key = mapping.canonical(f"{prefix}.{name}" if prefix else name)
                owners[key] = (module, name, name in module._parameters)
    return owners


def _mapped(path: Path, tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` copied into a new file at `path` and memory-mapped from it."""
    with open(path, "wb") as f:
        f.truncate(tensor.numel() * tensor.element_size())
    mapped = torch.from_file(str(path), shared=True, size=tensor.numel(), dtype=tensor.dtype)
    return mapped.view(tensor.shape).copy_(tensor)


def place(model: Any, key: str, tensor: torch.Tensor, scratch: Path, owners: Dict[str, Any]) -> None:
    """Replace meta tensor `key` of `model` with `tensor`, memory-mapped from a file in `scratch`."""
    module, name, is_param = owners[key]
    old = getattr(module, name)
    mapped = _mapped(scratch / f"{len(list(scratch.iterdir()))}.bin", tensor)
    if is_param:
        new = torch.nn.Parameter(mapped, requires_grad=old.requires_grad)
        for attr, value in vars(old).items():  # tensor_model_parallel, partition_dim, ...
            setattr(new, attr, value)
        module._parameters[name] = new
    else:
        module._buffers[name] = mapped


def still_meta(model: Any) -> List[str]:
    """Names of state-dict tensors no HF tensor filled."""
    return [k for k, v in model.state_dict().items() if torch.is_tensor(v) and v.is_meta]


def scratch_dir(out_dir: Path) -> Path:
    """An empty scratch folder beside `out_dir`, one per rank."""
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_initialized() else 0
    path = out_dir.with_name(f".{out_dir.name}.scratch-{rank}")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# ---- export: partial loads -----------------------------------------------------------------------


def _read(found_path: str, sh: Any) -> torch.Tensor:
    """The local tensor of ShardedTensor `sh` (a meta template) from the checkpoint files."""
    from nemotron.hf.dcp_compat import read_region

    sizes = (1,) * sh.prepend_axis_num + tuple(sh.local_shape)
    return read_region(found_path, sh.key, sh.global_offset, sizes).reshape(sh.local_shape)


def _load(found_path: str, value: Any) -> torch.Tensor:
    """A ShardedTensor's tensor, or a factory's (its parts read, then merged as Megatron does)."""
    from megatron.core.dist_checkpointing.mapping import ShardedTensorFactory

    if not isinstance(value, ShardedTensorFactory):
        return _read(found_path, value)
    built = value.build()
    if isinstance(built, dict):
        return value.merge_fn({k: _read(found_path, v) for k, v in built.items()})
    return value.merge_fn([_read(found_path, v) for v in built])


def load_groups(found_path: str, model_cfg: Any) -> Iterator[Tuple[List[mapping.Rule], Dict[str, torch.Tensor]]]:
    """(rules, {local-spec name: full tensor}) of a TP=1 model, one layer group at a time."""
    cfg = ours.run_config(model_cfg, 1)
    template = {mapping.canonical(k): v for k, v in build_meta(cfg).sharded_state_dict().items()}
    for _, rules in mapping.groups(model_cfg):
        yield rules, {rule.ours: _load(found_path, template[rule.ours]) for rule in rules}


def prebuilt_state_dict(model: Any, scratch: Path) -> Dict[str, Any]:
    """The model's sharded state dict with factories built now, each part memory-mapped on its own:
    the parts (SwiGLU gate/up, Mamba z/x/B/C/dt) are views, which the writer would otherwise copy."""
    from megatron.core.dist_checkpointing.mapping import ShardedTensor, ShardedTensorFactory

    sd = model.sharded_state_dict()
    for key, value in sd.items():
        if not isinstance(value, ShardedTensorFactory):
            continue
        built = value.build()
        parts = built.values() if isinstance(built, dict) else built
        for part in parts:
            if isinstance(part, ShardedTensor):
                part.data = _mapped(scratch / f"part-{len(list(scratch.iterdir()))}.bin", part.data.contiguous())
        sd[key] = built
    return sd
