"""Run under torch.distributed.run: build the run's model and optimizer, take one step, and write
what each rank really holds to <out>/rank<R>.json (parameters, grad/param buffers, Adam state).

    python -m torch.distributed.run --standalone --nproc-per-node 2 measure_rank_memory.py CONFIG OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf


def _optimizer_state_elements(optimizer) -> int:
    total = 0
    for opt in getattr(optimizer, "chained_optimizers", [optimizer]):
        for state in opt.optimizer.state.values():
            total += sum(t.numel() for t in state.values() if hasattr(t, "numel") and t.dim() > 0)
    return total


def _buffers(model):
    return [*model.buffers, *getattr(model, "expert_parallel_buffers", [])]


def main(config_path: str, out: str) -> None:
    from megatron.core import parallel_state as ps

    from nemotron.runtime.checkpoint.checkpointer import Checkpointer
    from nemotron.runtime.stages import pretrain
    from nemotron.runtime.train import distributed
    from nemotron.runtime.train import step as train_step_module
    from nemotron.runtime.train.setup import setup

    cfg = OmegaConf.load(config_path)
    info = distributed.init(cfg)
    run = setup(cfg, info, pretrain.PretrainStage(), Checkpointer(cfg))
    train_step_module.train_step(run)
    buffers = _buffers(run.model)
    record = {
        "stage": ps.get_pipeline_model_parallel_rank(),
        "tp_rank": ps.get_tensor_model_parallel_rank(),
        "dp_rank": ps.get_data_parallel_rank(),
        "ep_rank": ps.get_expert_model_parallel_rank(),
        "params": sum(p.numel() for p in run.model.parameters()),
        "param_bytes": sum(p.numel() * p.element_size() for p in run.model.parameters()),
        "grad_buffer": sum(b.grad_data.numel() for b in buffers),
        "param_buffer": sum(b.param_data.numel() for b in buffers if b.param_data is not None),
        "optimizer_state": _optimizer_state_elements(run.optimizer),
    }
    Path(out, f"rank{info.rank}.json").write_text(json.dumps(record))
    distributed.teardown()


if __name__ == "__main__":
    main(*sys.argv[1:3])
