"""DPO training speed: tokens/s of the DPO loop against the pretraining loop at twice the micro batch.

    python bench/dpo_train.py [--model gpt_tiny|nano3_tiny] [--rounds 3] [--steps 20] [override ...]

Ours: `nemotron.runtime.stages.dpo.run` on `+recipe=<arch>/dpo` (synthetic preference pairs, each pair
two packed rows, chosen and rejected; the frozen reference evaluated under no_grad in the same
micro-batch as the policy; sigmoid DPO loss). A micro-batch of M pairs is one forward of 2M rows.
Baseline: `nemotron.runtime.stages.pretrain.run` on `+recipe=<arch>/pretrain` with micro batch 2M and
global batch 2G (G pairs of DPO), so both sides put the same rows through the policy per step.
Same model, seq length, 1 thread, no tracker, no checkpoint, random weights on both sides
(`checkpoint.pretrained=null`: the reference is the policy's initial weights). Tokens/s counts every
row position of each step after the first (both chosen and rejected rows on the DPO side). Rounds
alternate; best rounds compared, medians alongside; the ratio DPO / pretrain is printed last.
Target >= 0.9 (issue 28). The reference's forward is a forward of every row besides the policy's
forward and backward: about a third more arithmetic (less in time: no autograd graph), so with the
reference in the step the ratio stays well below 1. A third side runs DPO with `dpo.precompute_reference=true`:
the reference's pass over every pair happens before the first step (its seconds are printed: the
same arithmetic moved out of the loop for one epoch, not removed) and the loop runs the policy
alone; both DPO ratios are printed, the precomputed one last.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sft_train import loop_config

from nemotron.runtime.stages import dpo, pretrain


def _config(recipe: str, model: str, steps: int, work: Path, micro: int, global_: int, extra):
    return loop_config(recipe, model, steps, work,
                       [f"train.micro_batch_size={micro}", f"train.global_batch_size={global_}", *extra])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--model", default="gpt_tiny")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--micro-pairs", type=int, default=4, help="DPO micro batch in pairs (M)")
    parser.add_argument("--global-pairs", type=int, default=16, help="DPO global batch in pairs (G)")
    args, extra = parser.parse_known_args()
    arch = "nano3" if args.model.startswith("nano3") else "gpt"
    m, g = args.micro_pairs, args.global_pairs
    ours, pre, pass_s, base = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            work = Path(tmp) / f"r{r}"
            base.append(pretrain.run(_config(f"{arch}/pretrain", args.model, args.steps, work, 2 * m, 2 * g,
                                             extra)).tokens_per_s)
            # the loop counts global_batch_size x seq_length a step: pairs; each pair is two rows
            ours.append(2 * dpo.run(_config(f"{arch}/dpo", args.model, args.steps, work, m, g,
                                            extra)).tokens_per_s)
            started = time.perf_counter()
            result = dpo.run(_config(f"{arch}/dpo", args.model, args.steps, work / "pre", m, g,
                                     ["dpo.precompute_reference=true", *extra]))
            pre.append(2 * result.tokens_per_s)
            pass_s.append(time.perf_counter() - started - result.wall_s)
            print(f"round {r + 1}: dpo {ours[-1]:,.0f} tokens/s, dpo precomputed {pre[-1]:,.0f}, "
                  f"pretrain {base[-1]:,.0f}")
    print(f"dpo ({args.model}, {m}/{g} pairs): best {max(ours):,.0f}, median {statistics.median(ours):,.0f} tokens/s")
    print(f"dpo, reference precomputed: best {max(pre):,.0f}, median {statistics.median(pre):,.0f} tokens/s; "
          f"setup incl. the reference pass over every pair {statistics.median(pass_s):.1f} s (median)")
    print(f"pretrain ({args.model}, {2 * m}/{2 * g} rows): best {max(base):,.0f}, "
          f"median {statistics.median(base):,.0f}")
    for label, side in (("dpo/pretrain", ours), ("dpo precomputed/pretrain", pre)):
        print(f"ratio {label}: {max(side) / max(base):.3f} best, "
              f"{statistics.median(side) / statistics.median(base):.3f} median (target >= 0.9)")


if __name__ == "__main__":
    main()
