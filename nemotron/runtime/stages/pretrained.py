"""Where a fine-tuning stage's weights come from: `checkpoint.pretrained` (`newest:<recipe>`, a
checkpoint folder or an iter_N folder, or null for random weights), loaded on a fresh start and
recorded, resolved to a path, as the run's lineage input."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Optional

from nemotron.common.checkpoint_index import Found, PretrainedNotFound, pretrained_checkpoint
from nemotron.runtime.checkpoint import store
from nemotron.runtime.train.progress import say


def pretrained_source(cfg: Any) -> Optional[Found]:
    """The checkpoint `checkpoint.pretrained` names; None when it is null."""
    value = cfg.checkpoint.get("pretrained")
    if value is None:
        return None
    return pretrained_checkpoint(str(value), str(cfg.paths.output_root))


def load_pretrained(cfg: Any, model: Any, source: Optional[Found], stage_name: str) -> None:
    """`source`'s weights into `model` (a fresh start); None: say the stage starts from random weights."""
    if source is None:
        say(f"checkpoint.pretrained=null: {stage_name} starts from random weights")
        return
    store.load_weights(source, cfg, model)


def with_pretrained_path(cfg: Any, source: Callable[[Any], Optional[Found]] = pretrained_source) -> Any:
    """`cfg` with `checkpoint.pretrained` set to the folder `source(cfg)` finds (unchanged when it
    is not found yet: said in one line when the weights are needed, on a fresh start)."""
    from omegaconf import DictConfig, open_dict

    if not isinstance(cfg, DictConfig) or not cfg.checkpoint.get("pretrained"):
        return cfg
    try:
        found = source(cfg)
    except PretrainedNotFound:
        return cfg
    if found is None:
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.checkpoint.pretrained = str(Path(found.path).resolve())
    return cfg
