"""One rank of the TP=2 LoRA checkpoint-layout check (tests/runtime/test_lora_tp.py starts it).

    python -m torch.distributed.run --nproc-per-node 2 tests/runtime/tp_lora_worker.py OUT_DIR

For each model it builds the model at TP=2 with adapters on every layer LoRA can wrap, writes into
column 0 of each column-parallel adapter's B (this rank's rows) the row's index in the unsharded
layer (a stacked layer's parts, SwiGLU gate/up and Mamba z/x/B/C/dt, each split across ranks on its
own), and saves the adapters as a LoRA run's checkpoint does. The test loads them at TP=1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lora_layout import MODELS, lora_config, part_sizes  # noqa: E402 - after the path


def main(out: Path) -> None:
    from nemotron.hf import megatron_side as ours
    from nemotron.runtime.peft import lora, state

    for name in MODELS:
        cfg = lora_config(name, tp=2)
        model = ours.build(cfg)
        lora.apply(cfg, model)
        tp, rank = ours.tp_layout()
        for qualified, layer in model.named_modules():
            if isinstance(layer, lora.LoRALinear) and layer.adapter.kind == "column":
                b = layer.adapter.linear_out.weight
                full = part_sizes(cfg, qualified, b.shape[0] * tp)
                labels = [start + rank * size // tp + torch.arange(size // tp) for start, size in _starts(full)]
                with torch.no_grad():
                    b[:, 0] = torch.cat(labels).to(b.dtype)
        setattr(model, state.RECORD, {"layout": "tp2"})
        ours.save(cfg, model, out / name, {}, model_sd=state.model_sharded_state_dict(model))


def _starts(sizes):
    start = 0
    for size in sizes:
        yield start, size
        start += size


if __name__ == "__main__":
    main(Path(sys.argv[1]))
