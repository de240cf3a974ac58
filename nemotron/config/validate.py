"""Cross-field rules, checked right after Hydra composes and before anything runs or is submitted.

Each rule is a small function taking the composed config and returning an error line (naming the keys
and their values, and what would be right) or None. `validate(cfg)` runs them all and raises one
`ConfigError` listing every broken rule, one per line. Types and unknown keys are already checked by
the schemas at compose time; these are the rules no single field can check.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Collection, Dict, FrozenSet, List, Optional, Sequence

from omegaconf import OmegaConf

from nemotron.config.hydra_compat import recording_reads
from nemotron.config.config_error import ConfigError
from nemotron.config.inputs import INPUT_RULES
from nemotron.config.keys import describe_unknown, unknown_keys
from nemotron.config.ranges import field_ranges
from nemotron.config.rl_rules import rewards_usable, rl_layout
from nemotron.config.schema import Arch, RunConfig
from nemotron.config.schema_dpo import DPO_RULES
from nemotron.config.schema_peft import PEFT_RULES
from nemotron.config.schema_eval import EVAL_RULES
from nemotron.config.secret_rule import secrets_are_strings
from nemotron.config.stack_rules import STACK_RULES
from nemotron.common.hybrid_pattern import HYBRID_SYMBOLS, hybrid_pattern
from nemotron.common.topology import data_parallel_size, model_parallel_size, ranks_per_node, world_size
from nemotron.memory.fit import fit_problem
from nemotron.tracking.settings import uri_problem


def keys_known(cfg: Any) -> Optional[str]:
    """Keys added past the schema (`+model.x=1`) would be silently ignored by the recipe: refuse them."""
    extra = list(unknown_keys(cfg))
    return describe_unknown(extra[0]) if extra else None


@functools.lru_cache(maxsize=None)
def _ranged_fields() -> tuple:
    """(dotted key, type, range) of every schema field with a range (read once: type hints are slow)."""
    return tuple((key, kind, r) for key, kind, r in field_ranges(RunConfig) if r is not None)


def values_in_range(cfg: Any) -> Optional[str]:
    """Every numeric field with a range (`nemotron.config.ranges`) holds a value inside it, or null."""
    return "\n".join(range_problems(cfg)) or None


def range_problems(cfg: Any, keys: Optional[Collection[str]] = None) -> List[str]:
    """Out-of-range lines of the ranged fields (only those in `keys`, when given)."""
    found = []
    for key, _, bounds in _ranged_fields():
        if keys is not None and key not in keys:
            continue
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not isinstance(value, bool) and not bounds.contains(value):
            found.append(f"{key}={value}: out of range, must be {bounds.text()}")
    return found


def heads_divide_hidden(cfg: Any) -> Optional[str]:
    m = cfg.model
    if m.kv_channels is None and m.hidden_size % m.num_attention_heads:
        return (
            f"model.num_attention_heads={m.num_attention_heads} must divide "
            f"model.hidden_size={m.hidden_size} (or set model.kv_channels)"
        )
    return None


def query_groups_divide_heads(cfg: Any) -> Optional[str]:
    m = cfg.model
    if m.num_query_groups is not None and m.num_attention_heads % m.num_query_groups:
        return (
            f"model.num_query_groups={m.num_query_groups} must divide model.num_attention_heads={m.num_attention_heads}"
        )
    return None


def tensor_parallel_divides_heads(cfg: Any) -> Optional[str]:
    tp, m = cfg.parallel.tensor_model_parallel_size, cfg.model
    groups = m.num_query_groups or m.num_attention_heads
    if m.num_attention_heads % tp or groups % tp:
        return (
            f"parallel.tensor_model_parallel_size={tp} must divide model.num_attention_heads="
            f"{m.num_attention_heads} and the key/value heads ({groups})"
        )
    return None


def layout_matches_world(cfg: Any) -> Optional[str]:
    p, world, mp = cfg.parallel, world_size(cfg), model_parallel_size(cfg)
    dp = p.data_parallel_size
    layout = f"TP {p.tensor_model_parallel_size} x PP {p.pipeline_model_parallel_size} x CP {p.context_parallel_size}"
    where = f"world size {world} = resources.nodes={cfg.resources.nodes} x {ranks_per_node(cfg)} ranks per node"
    if dp is None and world % mp:
        return f"parallel: {layout} = {mp} does not divide the {where}"
    if dp is not None and mp * dp != world:
        return f"parallel: {layout} x DP {dp} = {mp * dp} does not match the {where}"
    return None


def expert_parallel_fits(cfg: Any) -> Optional[str]:
    ep, m = cfg.parallel.expert_model_parallel_size, cfg.model
    if ep == 1:
        return None
    if not m.num_moe_experts:
        return f"parallel.expert_model_parallel_size={ep} needs a MoE model (model.num_moe_experts is null)"
    if m.num_moe_experts % ep:
        return f"parallel.expert_model_parallel_size={ep} must divide model.num_moe_experts={m.num_moe_experts}"
    dp_cp = data_parallel_size(cfg) * cfg.parallel.context_parallel_size
    if dp_cp % ep:
        return f"parallel.expert_model_parallel_size={ep} must divide data x context parallel ranks ({dp_cp})"
    return None


def router_topk_fits(cfg: Any) -> Optional[str]:
    m = cfg.model
    if m.num_moe_experts and m.moe_router_topk > m.num_moe_experts:
        return f"model.moe_router_topk={m.moe_router_topk} exceeds model.num_moe_experts={m.num_moe_experts}"
    return None


def hybrid_pattern_fits(cfg: Any) -> Optional[str]:
    m = cfg.model
    if getattr(m.arch, "name", m.arch) != Arch.hybrid.name:
        return None
    pattern = m.hybrid_layer_pattern or ""
    bad = sorted(set(pattern) - set(HYBRID_SYMBOLS))
    if not pattern or bad:
        return f"model.hybrid_layer_pattern={pattern!r} must be a non-empty string of {HYBRID_SYMBOLS!r}"
    if len(hybrid_pattern(m)) != m.num_layers:
        return (
            f"model.hybrid_layer_pattern has {len(pattern)} layers but model.num_layers={m.num_layers} "
            f"(use the pattern's length or a multiple of it)"
        )
    if "E" in pattern and not m.num_moe_experts:
        return "model.hybrid_layer_pattern has MoE layers (E) but model.num_moe_experts is null"
    return None


def gpus_fit_cluster(cfg: Any) -> Optional[str]:
    asked, has = cfg.resources.gpus_per_node, cfg.cluster.gpus_per_node
    if asked > has:
        return f"resources.gpus_per_node={asked} exceeds cluster.gpus_per_node={has} of cluster={cfg.cluster.name}"
    return None


def nodes_fit_cluster(cfg: Any) -> Optional[str]:
    asked, most = cfg.resources.nodes, cfg.cluster.max_nodes
    if asked < 1 or (most is not None and asked > most):
        return f"resources.nodes={asked} must be between 1 and cluster.max_nodes={most} of cluster={cfg.cluster.name}"
    return None


def signal_before_time_limit(cfg: Any) -> Optional[str]:
    """Slurm's save-and-requeue signal must come after the job starts (time limits are in minutes)."""
    c = cfg.cluster
    if c.signal_delay_s < 0 or (c.time_limit and c.signal_delay_s >= c.time_limit * 60):
        return (
            f"cluster.signal_delay_s={c.signal_delay_s} must be between 0 and cluster.time_limit={c.time_limit} "
            f"minutes ({c.time_limit * 60} s)"
        )
    return None


def batch_divides(cfg: Any) -> Optional[str]:
    t, dp = cfg.train, data_parallel_size(cfg)
    if t.micro_batch_size < 1 or t.global_batch_size % (t.micro_batch_size * dp):
        return (
            f"train.global_batch_size={t.global_batch_size} must be a multiple of "
            f"train.micro_batch_size={t.micro_batch_size} x data parallel size {dp}"
        )
    return None


def sequence_parallel_needs_tp(cfg: Any) -> Optional[str]:
    p = cfg.parallel
    if p.sequence_parallel and p.tensor_model_parallel_size == 1:
        return "parallel.sequence_parallel=true needs parallel.tensor_model_parallel_size > 1"
    return None


def min_lr_below_lr(cfg: Any) -> Optional[str]:
    o = cfg.optim
    if o.min_lr is not None and o.min_lr > o.lr:
        return f"optim.min_lr={o.min_lr} exceeds optim.lr={o.lr} (set optim.min_lr=null for lr / 10)"
    return None


def tracker_uri_valid(cfg: Any) -> Optional[str]:
    uri = cfg.tracker.get("uri") if hasattr(cfg.tracker, "get") else None
    problem = uri_problem(uri) if uri is not None else None
    return f"tracker.uri: {problem}" if problem else None


TRACKER_KINDS = ("mlflow", "jsonl", "none")


def tracker_kind_known(cfg: Any) -> Optional[str]:
    kind = cfg.tracker.get("kind") if hasattr(cfg.tracker, "get") else None
    if kind not in TRACKER_KINDS:
        return (
            f"tracker.kind={kind!r} is not a tracker we have; choose {', '.join(TRACKER_KINDS)} (or tracker=<option>)"
        )
    return None


def memory_fits(cfg: Any) -> Optional[str]:
    """The pre-flight memory estimate fits the cluster's GPUs (nemotron.memory)."""
    return fit_problem(cfg)


RULES: List[Callable[[Any], Optional[str]]] = [
    keys_known,
    values_in_range,
    heads_divide_hidden,
    query_groups_divide_heads,
    tensor_parallel_divides_heads,
    layout_matches_world,
    expert_parallel_fits,
    router_topk_fits,
    hybrid_pattern_fits,
    gpus_fit_cluster,
    nodes_fit_cluster,
    signal_before_time_limit,
    batch_divides,
    sequence_parallel_needs_tp,
    *STACK_RULES,
    min_lr_below_lr,
    tracker_uri_valid,
    tracker_kind_known,
    secrets_are_strings,
    rewards_usable,
    rl_layout,
    *INPUT_RULES,
    *DPO_RULES,
    *PEFT_RULES,
    *EVAL_RULES,
    memory_fits,
]
"""Every cross-field rule, in the order errors are reported."""
NEEDS_VALID_LAYOUT = (memory_fits,)
"""Rules run only when every rule before them passed (an estimate needs a layout that divides the model)."""


def problems(
    cfg: Any,
    rules: Optional[Sequence[Callable[[Any], Optional[str]]]] = None,
    reads: Optional[Dict[Any, FrozenSet[str]]] = None,
) -> List[str]:
    """Error lines of every broken rule (empty when the config is valid); `rules` defaults to RULES.
    With `reads`, the config keys each rule read are recorded into it (nemotron/config/rule_reads.py)."""
    found: List[str] = []
    for rule in RULES if rules is None else rules:
        line = None if found and rule in NEEDS_VALID_LAYOUT else _run(rule, cfg, reads)
        if line:
            found.append(line)
            if rule is values_in_range:  # the other rules divide by these values: stop here
                break
    return found


def _run(rule: Callable[[Any], Optional[str]], cfg: Any, reads: Optional[Dict[Any, FrozenSet[str]]]) -> Optional[str]:
    if reads is None:
        return rule(cfg)
    with recording_reads() as keys:
        try:
            return rule(cfg)
        finally:
            reads[rule] = frozenset(keys)


def validate(cfg: Any, rules: Optional[Sequence[Callable[[Any], Optional[str]]]] = None) -> None:
    """Raise ConfigError listing every broken rule (of `rules`, default RULES)."""
    found = problems(cfg, rules)
    if found:
        raise ConfigError("\n".join(found))
