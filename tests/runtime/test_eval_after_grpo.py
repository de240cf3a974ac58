"""Seeded: after a tiny GRPO run from an SFT checkpoint, the arithmetic eval task's exact match (on
sums GRPO's prompts never ask) is higher than the SFT checkpoint's.

Measured here (gpt_tiny, CPU, 1 thread; SFT 10 steps from random weights): the SFT checkpoint
scores 0.0 (it answers in words). After the recipe's 40 GRPO steps it still scores 0.0: the format
reward is learnt first and the policy writes `66666666`, a number that never ends. After 80 steps it
scores 0.115 (3 of the 26 held-out sums), after 120 steps 0.077 (answering `8` to everything).
That is GRPO's reward being learnt (one short number, then stop), not addition: the policy answers
nearly the same number to every question. ~80 s on 2 shared cores.
"""

from __future__ import annotations

from runtime_support import run_config, tiny_data_dir  # noqa: F401

from nemotron.runtime.eval import stage as eval_stage
from nemotron.runtime.stages.registry import stage_runner

EXACT = "exact_match,strip"


def _exact_match(run_config, checkpoint) -> float:  # noqa: F811
    cfg = run_config(
        "gpt/eval",
        f"checkpoint.pretrained={checkpoint}",
        "eval.tasks=[nemotron_arithmetic]",
        "eval.bootstrap_iters=0",
        "eval.batch_size=26",
    )
    return eval_stage.run(cfg)["results"]["nemotron_arithmetic"][EXACT]


def test_grpo_raises_held_out_exact_match_over_its_sft_checkpoint(run_config, tmp_path):  # noqa: F811
    sft_dir, rl_dir = tmp_path / "sft", tmp_path / "rl"
    sft = run_config(
        "gpt/sft", "checkpoint.pretrained=null", "train.steps=10", "train.eval_interval=0", f"checkpoint.dir={sft_dir}"
    )
    stage_runner("sft")(sft)
    stage_runner("rl")(
        run_config("gpt/rl", f"checkpoint.pretrained={sft_dir}", "train.steps=80", f"checkpoint.dir={rl_dir}")
    )
    before, after = _exact_match(run_config, sft_dir), _exact_match(run_config, rl_dir)
    print(f"arithmetic exact match: SFT {before:.3f}, after 80 GRPO steps {after:.3f}")
    assert after > before, (before, after)
