"""LoRA SFT against full SFT: peak memory and tokens/s, same model, batch and data, side by side.

    python bench/lora_sft.py [--rounds 2] [--steps 6] [--size default|previous|small] [override ...]

`--size default`: a gpt of ~152M parameters (6 layers, hidden 1536, ffn 4096) at micro batch 1,
global batch 4 (seq 128), where weights, gradients and Adam state are ~85 % of full SFT's peak above
the imported libraries and activations ~4 % (the rest is freed heap glibc keeps), as on a real
model. `--size previous`: the configuration measured until 2026-12-07 (~51M parameters: 8 layers,
hidden 768, micro batch 4, global batch 8), where activations and freed heap are about half of
full SFT's peak; `small` for a quick look. Each variant runs in its own process
(`nemotron.runtime.stages.sft.run`, 1 thread, no tracker, no checkpoint, random base weights: the
base is frozen either way), rounds alternate full / LoRA. Per run: tokens/s (the loop's own figure,
steps after the first), peak RSS, printed whole and above the process's RSS once the libraries are
imported (what training itself added), and the memory estimate's split of that run
(`nemotron.memory`: weights + gradients + Adam state, activations). Printed last: the ratios
LoRA / full (targets: memory <= 0.5, tokens/s >= 1.0; medians of the rounds).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SIZES = {
    "default": ["model.num_layers=6", "model.hidden_size=1536", "model.ffn_hidden_size=4096",
                "model.num_attention_heads=12", "model.num_query_groups=4",
                "train.micro_batch_size=1", "train.global_batch_size=4"],
    "previous": ["model.num_layers=8", "model.hidden_size=768", "model.ffn_hidden_size=2048",
                 "model.num_attention_heads=12", "model.num_query_groups=4",
                 "train.micro_batch_size=4", "train.global_batch_size=8"],
    "small": ["model.num_layers=4", "model.hidden_size=256", "model.ffn_hidden_size=704",
              "model.num_attention_heads=8", "model.num_query_groups=4"],
}  # fmt: skip
VARIANTS = {"full": ["peft=none"], "lora": ["peft=lora", "peft.rank=8"]}


def rss_mb() -> float:
    """This process's resident memory now, MB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def split_mb(cfg) -> dict:
    """The memory estimate's weights + gradients + optimizer state and activations of `cfg`, MB."""
    from nemotron.memory.fit import estimate_config

    parts = estimate_config(cfg).parts
    state = parts["weights"] + parts["gradients"] + parts["optimizer"]
    return {"state_mb": state / 2**20, "activations_mb": parts["activations"] / 2**20}


def child(variant: str, steps: int, work: Path, extra: list) -> dict:
    """One SFT run in this process; its tokens/s, memory and estimated memory split."""
    from omegaconf import OmegaConf

    from nemotron.config.compose import compose_run
    from nemotron.runtime.stages import sft

    argv = ["+recipe=gpt/sft", "model=gpt_tiny", "train.num_threads=1", "tracker=none", "checkpoint.save_at_end=false",
            "train.eval_interval=0", f"train.steps={steps}", f"train.log_interval={steps}",
            "checkpoint.pretrained=null", f"paths.output_root={work}", f"paths.cache_dir={work.parent}",
            *VARIANTS[variant], *extra]  # fmt: skip
    cfg = compose_run(argv, run_dir=work / "run")
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    before = rss_mb()
    result = sft.run(cfg)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    return {"tokens_per_s": result.tokens_per_s, "peak_mb": peak, "added_mb": peak - before, **split_mb(cfg)}


def run_child(variant: str, steps: int, work: Path, extra: list) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", variant, "--steps", str(steps), "--work", str(work),
                          *extra], capture_output=True, text=True, check=False)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"{variant} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--child", choices=sorted(VARIANTS))
    parser.add_argument("--work", type=Path)
    args, extra = parser.parse_known_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.work, extra)))
        return
    extra = [*SIZES[args.size], *extra]
    runs: dict = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for variant in VARIANTS:
                runs[variant].append(run_child(variant, args.steps, Path(tmp) / f"r{r}-{variant}", extra))
                got = runs[variant][-1]
                print(f"round {r + 1} {variant}: {got['tokens_per_s']:,.0f} tokens/s, peak {got['peak_mb']:,.0f} MB "
                      f"({got['added_mb']:,.0f} MB above the imported libraries; estimated weights + gradients "
                      f"+ Adam {got['state_mb']:,.0f} MB, activations {got['activations_mb']:,.0f} MB)",
                      flush=True)  # fmt: skip
    med = {v: {k: statistics.median(run[k] for run in runs[v]) for k in runs[v][0]} for v in VARIANTS}
    for v in VARIANTS:
        m = med[v]
        print(f"{v}: median {m['tokens_per_s']:,.0f} tokens/s, peak {m['peak_mb']:,.0f} MB (+{m['added_mb']:,.0f} MB; "
              f"estimated weights + gradients + Adam {m['state_mb'] / m['added_mb']:.2f} of it, "
              f"activations {m['activations_mb'] / m['added_mb']:.2f})")  # fmt: skip
    lora, full = med["lora"], med["full"]
    print(f"ratio lora/full: memory {lora['peak_mb'] / full['peak_mb']:.3f} peak, "
          f"{lora['added_mb'] / full['added_mb']:.3f} above imports (target <= 0.5); "
          f"tokens/s {lora['tokens_per_s'] / full['tokens_per_s']:.3f} (target >= 1.0)")  # fmt: skip


if __name__ == "__main__":
    main()
