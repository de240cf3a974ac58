"""SFT training speed: tokens/s of the SFT loop against the pretraining loop, same model and seq length.

    python bench/sft_train.py [--model gpt_tiny|nano3_tiny] [--rounds 3] [--steps 20] [override ...]

Ours: `nemotron.runtime.stages.sft.run` on `+recipe=<arch>/sft` (packed synthetic chats, block-diagonal
attention mask, per-sample Mamba state, per-token loss over the global batch). Baseline:
`nemotron.runtime.pretrain.run` on `+recipe=<arch>/pretrain` (which on CPU also feeds a causal
attention mask). Same model, seq length, batch sizes, 1 thread, no tracker, no checkpoint, random
weights on both sides; tokens/s counts every position of each step after the first (the loops'
own figure, padding included on the SFT side). Rounds alternate; best rounds compared, medians
alongside; the ratio SFT / pretrain is printed last. Target >= 0.95.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from nemotron.config.compose import compose_run
from nemotron.runtime.stages import pretrain, sft


def loop_config(recipe: str, model: str, steps: int, work: Path, extra):
    """The resolved config of a bench run of `recipe` (also bench/dpo_train.py's): 1 thread, no tracker,
    no checkpoint, no evaluation, random weights (a post-training recipe's `checkpoint.pretrained=null`)."""
    argv = [f"+recipe={recipe}", f"model={model}", "train.num_threads=1", "tracker=none",
            "checkpoint.save_at_end=false", "train.eval_interval=0", f"train.steps={steps}",
            f"train.log_interval={steps}", f"paths.output_root={work}", f"paths.cache_dir={work}",
            *([] if recipe.endswith("/pretrain") else ["checkpoint.pretrained=null"]), *extra]
    cfg = compose_run(argv, run_dir=work / recipe)
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--model", default="gpt_tiny")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args, extra = parser.parse_known_args()
    arch = "nano3" if args.model.startswith("nano3") else "gpt"
    ours, base = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            work = Path(tmp) / f"r{r}"
            base.append(pretrain.run(loop_config(f"{arch}/pretrain", args.model, args.steps, work,
                                             extra)).tokens_per_s)
            ours.append(sft.run(loop_config(f"{arch}/sft", args.model, args.steps, work,
                                        extra)).tokens_per_s)
            print(f"round {r + 1}: sft {ours[-1]:,.0f} tokens/s, pretrain {base[-1]:,.0f}")
    print(f"sft ({args.model}): best {max(ours):,.0f}, median {statistics.median(ours):,.0f} tokens/s")
    print(f"pretrain ({args.model}): best {max(base):,.0f}, median {statistics.median(base):,.0f}")
    print(f"ratio sft/pretrain: {max(ours) / max(base):.3f} best, "
          f"{statistics.median(ours) / statistics.median(base):.3f} median (target >= 0.95)")


if __name__ == "__main__":
    main()
