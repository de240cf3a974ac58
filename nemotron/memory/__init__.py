"""Pre-flight memory fit: bytes per GPU of a run, estimated from its config before anything starts.

    from nemotron.memory import estimate_config, fit_problem, table
    est = estimate_config(cfg)            # the worst pipeline stage, by component
    print(table(cfg, est))                # what `dry_run=true` shows
    fit_problem(cfg)                      # one error line when it does not fit the cluster's GPU

Pure Python on the composed config (no torch, no Megatron): the compose/launch layer calls it.
`layout` reads the config, `params` and `activations` count what one rank holds (`rollout`: what a
GRPO rollout adds), `estimate` adds them up per stage, `fit` compares with the cluster's GPU and
finds the cheapest change.
"""

from nemotron.memory.estimate import StageEstimate, estimate
from nemotron.memory.fit import estimate_config, fit_notes, fit_problem, table
from nemotron.memory.layout import Layout, layout_from_config

__all__ = [
    "Layout",
    "StageEstimate",
    "estimate",
    "estimate_config",
    "fit_notes",
    "fit_problem",
    "layout_from_config",
    "table",
]
