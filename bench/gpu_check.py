"""One-GPU check of the tiny and small configs: tokens/s, TFLOP/s per GPU and MFU.

    python bench/gpu_check.py [--steps 30] [--models gpt_tiny,nano3_tiny,gpt_small]

For a lent GPU: each model trains in this process with the same code path as the recipes
(`nemotron.runtime.pretrain.run`, bf16, TE spec where transformer_engine imports, upstream Mamba
kernels where mamba_ssm imports), then its FLOPs per token (nemotron/runtime/train/flops.py) and the
device's dense bf16 peak give MFU. Tiny models cannot fill a GPU: their MFU is a smoke test of the
path, not a performance claim. Refuses to run without CUDA.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

SMALL_OVERRIDES = {
    "gpt_small": ["model=gpt_tiny", "model.num_layers=8", "model.hidden_size=1024", "model.num_attention_heads=16",
                  "model.num_query_groups=4", "model.ffn_hidden_size=4096", "model.seq_length=1024",
                  "train.micro_batch_size=8", "train.global_batch_size=8"],
}


def flops_of(cfg, vocab: int) -> float:
    """FLOPs per token of the model this config builds (built once on the GPU, then dropped)."""
    from nemotron.runtime import cpu_compat
    from nemotron.runtime.train import distributed
    from nemotron.runtime.train.flops import flops_per_token
    from nemotron.runtime.model.build import build_model

    distributed.init(cfg)
    try:
        cpu_compat.seed_model_parallel(cfg.train.seed)
        model, _ = build_model(cfg, vocab)
        return flops_per_token(model, cfg, vocab)
    finally:
        distributed.teardown()


def check(name: str, steps: int, root: str) -> str:
    import torch
    from omegaconf import OmegaConf

    from nemotron.config.compose import compose_run
    from nemotron.runtime.stages import pretrain
    from nemotron.runtime.train.flops import device_peak_tflops, mfu

    overrides = SMALL_OVERRIDES.get(name, [f"model={name}"])
    cfg = compose_run(["+recipe=gpt/pretrain", *overrides, f"train.steps={steps}", "tracker=none",
                       "checkpoint.save_at_end=false", f"paths.output_root={root}"], run_dir=f"{root}/{name}")
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    result = pretrain.run(cfg)
    flops = flops_of(cfg, cfg.data.tokenizer_vocab_size)
    peak = device_peak_tflops(torch.cuda.get_device_name())
    tflops = result.tokens_per_s * flops / 1e12
    share = mfu(result.tokens_per_s, flops, peak)
    return (f"{name:<12} {result.tokens_per_s:>12,.0f} tokens/s  {tflops:8.2f} TFLOP/s/GPU  "
            f"MFU {share * 100 if share is not None else float('nan'):5.1f}%  loss {result.losses[0]:.3f}->{result.losses[-1]:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--models", default="gpt_tiny,nano3_tiny,gpt_small")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: this check needs a GPU", file=sys.stderr)
        return 2
    print(f"device: {torch.cuda.get_device_name()}")
    with tempfile.TemporaryDirectory() as root:
        for name in args.models.split(","):
            print(check(name, args.steps, root), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
