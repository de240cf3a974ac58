"""The checks `bench/gpu_check.py` runs, one function each: `run_check(name, opts) -> record`.

Each check composes its run with `nemotron.config.compose.compose_run` and validates it as
`python -m nemotron.train` does, then calls the stage's own `run(cfg)` (pretrain, SFT, DPO, GRPO)
or the conversion CLI's `main(argv)` (HF import/export) in this process: the code path the recipes
take. A record holds what the check measured (see `bench/gpu_check.py` for the JSON); an exception
is the driver's to catch.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional

GIB = 1024**3
BF16_TOLERANCE = 1e-1
"""Packed vs alone, largest |per-token loss difference| (nats) on the GPU (bf16). Calibrated on the
CPU with the comparison's model (gpt_tiny, seq 512, init std 0.1) cast to bf16: the two layouts'
roundings differ by up to 0.027 per token (0.0035 in a sample's mean), while the same rows without
boundaries (the control, a leak) differ by 0.65 (nano3_tiny: 0.17 in fp32; the noise/leak ratio was
1/14 to 1/24 for every init std tried); 0.1 sits between. The check also fails, as inconclusive,
when the control does not exceed the tolerance."""
FP32_TOLERANCE = 1e-4
"""The same on the CPU (fp32): only summation order differs (measured 2e-6)."""
COMPARE_INIT_STD = 0.1
"""model.init_method_std of the comparison's model: at the default 0.02 random logits are so flat
that a leak across samples moves a loss by 0.03 nats, inside bf16's noise; at 0.1 by 0.65."""
SFT_SEQ = ["model.seq_length=512"]
"""SFT checks pack at 512 tokens: the tiny chats (~100 tokens) then share rows, several to a row."""

SMALL_MODELS = {
    "gpt": ["model=gpt_tiny", "model.num_layers=8", "model.hidden_size=1024", "model.num_attention_heads=16",
            "model.num_query_groups=4", "model.ffn_hidden_size=4096", "model.seq_length=1024"],
    "nano3": ["model=nano3_tiny", "model.num_layers=8", "model.hybrid_layer_pattern=M*MEM*ME",
              "model.hidden_size=1024", "model.num_attention_heads=16", "model.num_query_groups=4",
              "model.ffn_hidden_size=2048", "model.moe_ffn_hidden_size=1024", "model.num_moe_experts=8",
              "model.mamba_head_dim=64", "model.mamba_num_groups=8", "model.mamba_state_dim=128",
              "model.seq_length=1024"],
}  # fmt: skip
"""Pretraining on a GPU: big enough that MFU says something about the path (tiny models cannot fill
an H100), small enough for seconds a step; the CPU smoke trains the tiny options instead."""


def compose(recipe: str, opts: Any, extra: List[str]) -> Any:
    """The validated, resolved config of `+recipe=<recipe>` with the check's overrides."""
    from omegaconf import OmegaConf

    from nemotron.config.compose import compose_run
    from nemotron.config.validate import validate

    name = recipe.replace("/", "_")
    base = [
        f"+recipe={recipe}",
        "tracker=none",
        "checkpoint.save_at_end=false",
        "train.eval_interval=0",
        f"paths.output_root={opts.root}/outputs",
        f"paths.cache_dir={opts.root}/cache",
    ]
    if opts.cpu_smoke:
        base.append("train.num_threads=1")
    cfg = compose_run([*base, *extra], run_dir=f"{opts.root}/runs/{name}-{time.time_ns()}")
    validate(cfg)
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def stack_of(cfg: Any) -> Dict[str, Any]:
    """The layer spec and Mamba mixer the runtime builds for `cfg` on this machine."""
    from nemotron.common.hybrid_pattern import hybrid_pattern
    from nemotron.runtime.model.build import mamba_mixer_class, use_te_spec

    hybrid = str(cfg.model.arch) == "hybrid" and "M" in hybrid_pattern(cfg.model)
    mixer = None
    if hybrid:
        mixer = mamba_mixer_class(cfg).__name__
    return {"layer_spec": "te" if use_te_spec(cfg) else "local", "mamba_mixer": mixer}


def memory_before() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def memory_after(cfg: Optional[Any], why_no_estimate: str = "") -> Dict[str, Any]:
    """The pre-flight estimate (`nemotron.memory.estimate_config`, the function `validate` and the
    dry run use) against the peak the caching allocator saw since `memory_before()`."""
    import torch

    from nemotron.memory import estimate_config
    from nemotron.memory.estimate import GPU_FIXED_BYTES

    out: Dict[str, Any] = {}
    if cfg is not None:
        est = estimate_config(cfg)
        out["estimate_gib"] = est.total / GIB
        # What max_memory_allocated can see: the estimate less the fixed CUDA-context allowance.
        out["estimate_tensors_gib"] = (est.total - (GPU_FIXED_BYTES if est.parts["allowance"] else 0)) / GIB
        out["estimate_parts_gib"] = {k: v / GIB for k, v in est.parts.items()}
    else:
        out["estimate_skipped"] = why_no_estimate
    if not torch.cuda.is_available():
        out["measured_skipped"] = "no CUDA"
        return out
    torch.cuda.synchronize()
    out["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
    out["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
    if cfg is not None and out["peak_allocated_gib"] > 0:
        out["estimate_ratio"] = out["estimate_tensors_gib"] / out["peak_allocated_gib"]
    return out


def flops_per_token(cfg: Any) -> float:
    """Model FLOPs per token (nemotron/runtime/train/flops.py) of the model `cfg` builds."""
    from nemotron.memory.layout import padded_vocab
    from nemotron.runtime import cpu_compat
    from nemotron.runtime.model.build import build_model
    from nemotron.runtime.train import distributed
    from nemotron.runtime.train import flops as flops_mod

    distributed.init(cfg)
    try:
        cpu_compat.seed_model_parallel(cfg.train.seed)
        model, _ = build_model(cfg, int(cfg.data.tokenizer_vocab_size))
        return flops_mod.flops_per_token(model, cfg, padded_vocab(cfg))
    finally:
        distributed.teardown()


def train_record(cfg: Any, run: Callable[[Any], Any], opts: Any, with_mfu: bool) -> Dict[str, Any]:
    """Run a stage's `run(cfg)`; its throughput, losses, memory and (with_mfu) MFU."""
    import torch

    from nemotron.runtime.train.flops import device_peak_tflops, mfu

    m = cfg.model
    shape = f"{m.num_layers} layers, hidden {m.hidden_size}, seq {m.seq_length}"
    shape += f", micro batch {cfg.train.micro_batch_size}"
    record: Dict[str, Any] = {**stack_of(cfg), "model": shape, "steps": cfg.train.steps}
    memory_before()
    result = run(cfg)
    record["memory"] = memory_after(cfg)
    record.update(tokens_per_s=result.tokens_per_s, loss_first=result.losses[0], loss_last=result.losses[-1])
    if not all(math.isfinite(x) for x in result.losses):
        raise RuntimeError(f"non-finite loss: {result.losses}")
    if with_mfu:
        flops = flops_per_token(cfg)
        record["flops_per_token"] = flops
        record["tflops_per_gpu"] = result.tokens_per_s * flops / 1e12
        peak = device_peak_tflops(torch.cuda.get_device_name()) if torch.cuda.is_available() else None
        record["mfu"] = mfu(result.tokens_per_s, flops, peak)
        if record["mfu"] is None:
            record["mfu_skipped"] = "no CUDA" if not torch.cuda.is_available() else "device peak unknown"
    record["_result"] = result
    return record


# ---- the checks ----------------------------------------------------------------------------------


def pretrain(family: str, opts: Any) -> Dict[str, Any]:
    from nemotron.runtime.stages import pretrain as stage

    model = [f"model={family}_tiny"] if opts.cpu_smoke else SMALL_MODELS[family]
    batch = ["train.micro_batch_size=2", "train.global_batch_size=2"] if opts.cpu_smoke else [
        "train.micro_batch_size=8", "train.global_batch_size=8"]  # fmt: skip
    cfg = compose(f"{family}/pretrain", opts, [*model, *batch, f"train.steps={opts.steps(30)}"])
    return train_record(cfg, stage.run, opts, with_mfu=True)


def sft(family: str, opts: Any) -> Dict[str, Any]:
    """The SFT stage on packed chats, then each packed sample's token losses against it run alone."""
    from nemotron.runtime.stages import sft as stage

    batch = ["train.micro_batch_size=2", "train.global_batch_size=4"] if opts.cpu_smoke else []
    extra = ["checkpoint.pretrained=null", f"train.steps={opts.steps(10)}", *SFT_SEQ, *batch]
    cfg = compose(f"{family}/sft", opts, extra)
    record = train_record(cfg, stage.run, opts, with_mfu=True)
    from packed_compare import compare_packed  # noqa: I001 - bench/ is the script's own folder

    tolerance = FP32_TOLERANCE if opts.cpu_smoke else BF16_TOLERANCE
    record["packed_vs_unpacked"] = compare_packed(cfg, tolerance, COMPARE_INIT_STD)
    if not record["packed_vs_unpacked"]["passed"]:
        raise AssertionError(record["packed_vs_unpacked"]["why"])
    return record


def dpo(family: str, opts: Any) -> Dict[str, Any]:
    from nemotron.runtime.stages import dpo as stage

    cfg = compose(f"{family}/dpo", opts, ["checkpoint.pretrained=null", f"train.steps={opts.steps(10)}"])
    record = train_record(cfg, stage.run, opts, with_mfu=False)
    metrics = record["_result"].stage_metrics
    if metrics:
        record["dpo_last"] = {k: v for k, v in metrics[-1].items() if k.startswith("rewards/")}
    return record


def rl(family: str, opts: Any) -> Dict[str, Any]:
    from nemotron.runtime.stages.rl import stage

    steps = opts.steps(5)
    cfg = compose(f"{family}/rl", opts, ["checkpoint.pretrained=null", f"train.steps={steps}"])
    record = train_record(cfg, stage.run, opts, with_mfu=False)
    metrics = record["_result"].stage_metrics
    later = metrics[1:] or metrics  # the first rollout pays for warm-up
    rates = [m["generation_tokens_per_s"] for m in later if "generation_tokens_per_s" in m]
    record["generation_tokens_per_s"] = sum(rates) / len(rates) if rates else None
    record["reward_last"] = metrics[-1].get("reward_mean") if metrics else None
    return record


def hf_roundtrip(kind: str, opts: Any) -> Dict[str, Any]:
    """A tiny HF model made here -> `import-hf` -> `export-hf --verify`, through the CLI's main."""
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "hf"))
    import hf_support  # noqa: I001 - the tests' tiny HF models (gpt_tiny / nano3_tiny shapes, no hub)

    from nemotron.hf import cli
    from nemotron.hf.exporter import EXPORT_RECORD

    root = Path(opts.root) / f"hf-{kind}"
    make = {"llama": lambda p: hf_support.llama_dir(p, tied=False), "nemotron_h": hf_support.nemotron_h_dir}[kind]
    hf_dir = make(root / "hf")
    ckpt, out, registry = root / "megatron", root / "export", root / "artifacts.json"
    memory_before()
    for argv in (["import-hf", str(hf_dir), "--out", str(ckpt)],
                 ["export-hf", str(ckpt), str(out), "--verify"]):  # fmt: skip
        code = cli.main([*argv, "--overwrite", "--registry", str(registry)])
        if code == 2:
            raise RuntimeError(f"python -m nemotron.checkpoint {argv[0]} exited 2 (its error line is in the log)")
    record: Dict[str, Any] = {"memory": memory_after(None, "the pre-flight estimates training runs only")}
    verify = json.loads((out / EXPORT_RECORD).read_text())["verify"]
    record["verify"] = {k: verify[k] for k in ("max_abs_logit_diff", "tolerance", "passed", "dtype")}
    if not verify["passed"]:
        raise AssertionError(f"export-hf --verify: max |logit diff| {verify['max_abs_logit_diff']:.3g} "
                             f"> {verify['tolerance']:g}")  # fmt: skip
    return record


CHECKS: Dict[str, Callable[[Any], Dict[str, Any]]] = {
    "pretrain_gpt": lambda o: pretrain("gpt", o),
    "pretrain_nano3": lambda o: pretrain("nano3", o),
    "sft_gpt": lambda o: sft("gpt", o),
    "sft_nano3": lambda o: sft("nano3", o),
    "dpo_gpt": lambda o: dpo("gpt", o),
    "rl_gpt": lambda o: rl("gpt", o),
    "rl_nano3": lambda o: rl("nano3", o),
    "hf_llama": lambda o: hf_roundtrip("llama", o),
    "hf_nemotron_h": lambda o: hf_roundtrip("nemotron_h", o),
}
"""Every check, in the order they run (one H100: about five minutes in all)."""


def run_check(name: str, root: str, cpu_smoke: bool, steps: Optional[int]) -> Dict[str, Any]:
    """The record of check `name` (raises when the check fails)."""
    opts = SimpleNamespace(root=root, cpu_smoke=cpu_smoke)
    opts.steps = lambda gpu_default: steps or (2 if cpu_smoke else gpu_default)
    record = CHECKS[name](opts)
    record.pop("_result", None)
    return record
