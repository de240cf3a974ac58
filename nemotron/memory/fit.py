"""Does the estimate fit the cluster's GPU? The check before launch, the cheapest fix, the table.

The limit is `cluster.gpu_memory_gb` (GiB, as nvidia-smi counts) less `preflight.memory_headroom`
of it. Runs on CPU ranks (resources.gpus_per_node=0) are not checked. When a run does not fit,
`fit_problem` names the worst rank, the estimate, the limit and the first change, in order of what
it costs in throughput, that would fit with the same GPUs: the distributed optimizer, selective
recompute, half the micro batch, twice the TP (within a node), twice the PP (not for DPO and GRPO,
which refuse it), full recompute; when none does alone, the first pair of them that does.
"""

from __future__ import annotations

import dataclasses
from typing import Any, List, Optional, Tuple

from nemotron.memory.estimate import COMPONENTS, GIB, StageEstimate, estimate
from nemotron.memory.layout import Layout, layout_from_config
from nemotron.memory.rollout import rollout_parts


def _name(value: Any) -> str:
    return str(getattr(value, "name", value))


def estimate_config(cfg: Any) -> StageEstimate:
    """The worst stage's estimate for a composed config."""
    return estimate(layout_from_config(cfg))


def limit_bytes(cfg: Any) -> Optional[float]:
    """Usable bytes per GPU: cluster.gpu_memory_gb less the headroom; None when unknown."""
    gb = cfg.cluster.get("gpu_memory_gb") if hasattr(cfg.cluster, "get") else None
    if gb is None:
        return None
    return float(gb) * GIB * (1.0 - float(cfg.preflight.memory_headroom))


def _layout_text(x: Layout) -> str:
    rows = f" ({x.micro_batch * x.rows_per_item} rows)" if x.rows_per_item > 1 else ""
    if not x.trains:
        return f"TP{x.tp} PP{x.pp} CP{x.cp} EP{x.ep} DP{x.dp}, eval batch {x.micro_batch}"
    return f"TP{x.tp} PP{x.pp} CP{x.cp} EP{x.ep} DP{x.dp}, micro batch {x.micro_batch}{rows}, recompute {x.recompute}"


def scaled_layout(x: Layout, tp: int = 1, pp: int = 1) -> Optional[Layout]:
    """`x` with TP/PP multiplied (DP shrinks to keep the world), or None when that cannot be built."""
    new_tp, new_pp = x.tp * tp, x.pp * pp
    world = x.tp * x.pp * x.cp * x.dp
    if world % (new_tp * new_pp * x.cp) or x.heads % new_tp or x.groups % new_tp:
        return None
    if len(x.layers) % new_pp:
        return None
    dp = world // (new_tp * new_pp * x.cp)
    if x.ep > 1 and (dp * x.cp) % x.ep:
        return None
    micro = max(1, x.micro_batches * x.dp // dp)
    return dataclasses.replace(
        x,
        tp=new_tp,
        pp=new_pp,
        dp=dp,
        micro_batches=micro,
        sequence_parallel=x.sequence_parallel or (new_tp > 1 and x.gpu),
    )


def _candidates(x: Layout, gpus_per_node: int) -> List[Tuple[str, Optional[Layout]]]:
    r = dataclasses.replace
    half = x.micro_batch // 2
    sp = " parallel.sequence_parallel=true" if x.gpu and not x.sequence_parallel else ""
    if not x.trains:  # evaluation: a smaller batch of requests, or the weights over more TP ranks
        return [
            (f"eval.batch_size={half}", r(x, micro_batch=half) if half >= 1 else None),
            (
                f"parallel.tensor_model_parallel_size={x.tp * 2}" + sp,
                scaled_layout(x, tp=2) if x.tp * 2 <= max(1, gpus_per_node) else None,
            ),
        ]
    return [
        (
            "parallel.use_distributed_optimizer=true",
            r(x, distributed_optimizer=True) if not x.distributed_optimizer and x.dp > 1 else None,
        ),
        ("train.recompute=selective", r(x, recompute="selective") if x.recompute == "none" else None),
        (
            f"train.micro_batch_size={half}",
            r(x, micro_batch=half, micro_batches=x.micro_batches * 2) if half >= 1 else None,
        ),
        (
            f"parallel.tensor_model_parallel_size={x.tp * 2}" + sp,
            scaled_layout(x, tp=2) if x.tp * 2 <= max(1, gpus_per_node) else None,
        ),
        (f"parallel.pipeline_model_parallel_size={x.pp * 2}", scaled_layout(x, pp=2) if x.pipeline_allowed else None),
        ("train.recompute=full", r(x, recompute="full") if x.recompute != "full" else None),
    ]


def _fits(changes: List[Tuple[str, Optional[Layout]]], limit: float):
    for change, layout in changes:
        if layout is not None:
            est = estimate(layout)
            if est.total <= limit:
                return change, est
    return None


def _combined(first: str, second: str) -> str:
    """Two changes as one set of overrides: a key both set (TP doubled twice) appears once, with the
    second value (`parallel.tensor_model_parallel_size=4`, not `...=2 ...=4`)."""
    merged = dict(item.split("=", 1) for item in first.split())
    merged.update(item.split("=", 1) for item in second.split())
    return " ".join(f"{key}={value}" for key, value in merged.items())


def cheapest_fix(x: Layout, limit: float, gpus_per_node: int) -> Optional[Tuple[str, StageEstimate]]:
    """The first candidate change (else pair of changes) whose estimate fits `limit`, with that estimate."""
    single = _candidates(x, gpus_per_node)
    found = _fits(single, limit)
    for first, layout in single if found is None else ():
        if layout is not None:
            seconds = _candidates(layout, gpus_per_node)
            pairs = [(_combined(first, second), y) for second, y in seconds if second != first]
            found = _fits(pairs, limit)
            if found:
                break
    return found


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def fit_problem(cfg: Any) -> Optional[str]:
    """One error line when the run's estimate exceeds its GPUs' memory (preflight.memory=check)."""
    return _over_limit(cfg) if _name(cfg.preflight.memory) == "check" else None


def _over_limit(cfg: Any) -> Optional[str]:
    limit = limit_bytes(cfg)
    if int(cfg.resources.gpus_per_node) == 0 or limit is None:
        return None
    x = layout_from_config(cfg)
    est = estimate(x)
    if est.total <= limit:
        return None
    fix = cheapest_fix(x, limit, int(cfg.resources.gpus_per_node))
    hint = f"cheapest change that fits: {fix[0]} ({_gib(fix[1].total)})" if fix else _no_fix_hint(est)
    return (
        f"memory: pipeline stage {est.stage} needs ~{_gib(est.total)} per GPU ({_layout_text(x)}), "
        f"over the {_gib(limit)} usable of cluster.gpu_memory_gb={cfg.cluster.gpu_memory_gb} "
        f"(cluster={cfg.cluster.name}, preflight.memory_headroom={cfg.preflight.memory_headroom}); "
        f"{hint}; or preflight.memory=warn|off"
    )


def _no_fix_hint(est: StageEstimate) -> str:
    if est.peak_phase == "rollout" and est.phases.get("scoring") is not None:
        return "no one or two changes fit: lower eval.batch_size or model.seq_length, or use more GPUs"
    if est.peak_phase == "rollout":
        return (
            "no one or two changes fit: the rollout's KV cache holds train.global_batch_size / DP x "
            "rl.group_size sequences of model.seq_length: lower one of those, use more GPUs or a smaller model"
        )
    return "no one or two changes fit: use more GPUs, a smaller model or a shorter model.seq_length"


def fit_notes(cfg: Any) -> List[str]:
    """Lines to print (not errors): the check cannot run, or (warn mode) the run does not fit."""
    mode = _name(cfg.preflight.memory)
    if mode == "off" or int(cfg.resources.gpus_per_node) == 0:
        return []
    if limit_bytes(cfg) is None:
        return [
            f"note: memory check skipped: cluster={cfg.cluster.name} has no cluster.gpu_memory_gb "
            "(set it, e.g. cluster.gpu_memory_gb=80 for H100, or preflight.memory=off)"
        ]
    problem = _over_limit(cfg) if mode == "warn" else None
    return [f"warning: {problem}"] if problem else []


def table(cfg: Any, est: Optional[StageEstimate] = None) -> str:
    """The dry run's memory table: the worst rank's components, total and the limit."""
    x = layout_from_config(cfg)
    est = est or estimate(x)
    device = ("GPU, bf16 + fp32 master weights" if x.trains else "GPU, bf16 weights") if x.gpu else "CPU, fp32"
    lines = [f"# memory per rank (estimate; worst: pipeline stage {est.stage} of {x.pp}; {_layout_text(x)}; {device})"]
    scale, unit = (GIB, "GiB") if est.total >= GIB else (2**20, "MiB")
    for name in (n for n in COMPONENTS if n != "reference" or x.reference):
        note = _row_note(x, est, name, scale, unit)
        lines.append(f"  {name:<12}{est.parts[name] / scale:>10.2f} {unit}{note}")
    lines.append(f"  {'total':<12}{est.total / scale:>10.2f} {unit}{_verdict(cfg, x, est)}")
    return "\n".join(lines)


def _row_note(x: Layout, est: StageEstimate, name: str, scale: float, unit: str) -> str:
    """GRPO's activations row: which phase it is, and the other phase's size."""
    if name != "activations" or "rollout" not in est.phases:
        return ""
    other = "training" if x.trains else "scoring"
    if est.peak_phase == "rollout":
        held = " + ".join(rollout_parts(x, est.stage))
        return f"  (rollout: {held}; {other} {est.phases[other] / scale:.2f} {unit})"
    return f"  ({other}; rollout {est.phases['rollout'] / scale:.2f} {unit})"


def _verdict(cfg: Any, x: Layout, est: StageEstimate) -> str:
    limit = limit_bytes(cfg)
    if not x.gpu:
        return "  (CPU ranks: not checked)"
    if _name(cfg.preflight.memory) == "off":
        return "  (not checked: preflight.memory=off)"
    if limit is None:
        return f"  (not checked: cluster={cfg.cluster.name} has no cluster.gpu_memory_gb)"
    return f"  of {_gib(limit)} usable: {'fits' if est.total <= limit else 'DOES NOT FIT'}"
