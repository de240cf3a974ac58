"""Which module trains each stage kind: the one place a stage is chosen by name.

A recipe script says its kind (`main(__doc__, stage="sft")`, nemotron/runtime/script.py); the
compose side tells the kind from the recipe's name (`nemotron.common.stages`). Each module here has
a `run(cfg) -> TrainResult` and one `Stage` subclass.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

STAGE_MODULES = {
    "pretrain": "nemotron.runtime.stages.pretrain",
    "sft": "nemotron.runtime.stages.sft",
    "dpo": "nemotron.runtime.stages.dpo",
    "rl": "nemotron.runtime.stages.rl.stage",
    "eval": "nemotron.runtime.eval.stage",
}
"""Stage kind -> the module that runs it (eval benchmarks a checkpoint; it trains nothing)."""


def stage_runner(kind: str) -> Callable[[Any], Any]:
    """The `run(cfg)` of stage `kind`; a ValueError naming the kinds there are."""
    if kind not in STAGE_MODULES:
        raise ValueError(f"stage={kind!r} is not a training stage; use one of {', '.join(STAGE_MODULES)}")
    return importlib.import_module(STAGE_MODULES[kind]).run
