"""Default batch sizes that fit the ranks a run gets.

A recipe's defaults are sized for one process (global batch 8 of micro-batches of 4); on a cluster
option that gives it 8 data-parallel ranks, `8 % (4 x 8)` would refuse the README's own Slurm example.
When the user set neither `train.global_batch_size` nor `train.micro_batch_size` (on the command line),
`fit_batch_to_ranks` raises the global batch to the nearest multiple of micro-batch x data-parallel
size and returns a note saying so; a batch size the user chose is never changed (validation refuses a
misfit, naming both).
"""

from __future__ import annotations

from typing import Any, Optional

from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from nemotron.config.validate import data_parallel_size

BATCH_KEYS = ("train.global_batch_size", "train.micro_batch_size")


def chosen_on_command_line(cfg: Any) -> bool:
    """True when an override of this run names one of the batch-size keys."""
    if "hydra" in cfg:  # a sweep member's config (its own overrides)
        task = list(cfg.hydra.overrides.task)
    elif HydraConfig.initialized():
        task = list(HydraConfig.get().overrides.task)
    else:  # composed outside Hydra's app (tests, the API): every value counts as chosen
        return True
    return any(line.lstrip("+~").split("=", 1)[0] in BATCH_KEYS for line in task)


def fit_batch_to_ranks(cfg: Any) -> Optional[str]:
    """Raise a default global batch that data parallelism cannot split; the note, or None."""
    t = cfg.train
    per_step = int(t.micro_batch_size) * data_parallel_size(cfg)
    if per_step < 1 or t.global_batch_size % per_step == 0 or chosen_on_command_line(cfg):
        return None
    fitted = -(-int(t.global_batch_size) // per_step) * per_step
    note = (
        f"note: train.global_batch_size={t.global_batch_size} (the recipe's default) raised to {fitted} = "
        f"micro-batch {t.micro_batch_size} x {per_step // int(t.micro_batch_size)} data-parallel ranks; "
        "set train.global_batch_size to choose"
    )
    with open_dict(t):
        t.global_batch_size = fitted
    return note
