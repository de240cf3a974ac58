"""The local arithmetic eval task asks only sums GRPO's generated prompts never train on, whatever
the seeds (a fixed seeded split of the pairs), and compose knows its size."""

from __future__ import annotations

from types import SimpleNamespace

from nemotron.common.eval_tasks import heldout_arithmetic, local_task_sizes
from nemotron.runtime.data.rl import arithmetic_question, arithmetic_task


def test_eval_sums_are_disjoint_from_grpo_prompts_for_any_seeds():
    for operand in (9, 30):
        trained = {q for seed in (0, 1234, 7) for q, _ in arithmetic_task(2000, seed, operand)}
        for seed in (0, 1234, 99):
            asked = [arithmetic_question(a, b)[0] for a, b in heldout_arithmetic(100, seed, operand)]
            assert len(set(asked)) == len(asked) > 0
            assert not trained & set(asked), operand
    assert len(heldout_arithmetic(100, 1, 9)) == 26  # a quarter of the 100 pairs of 0..9
    assert len({q for q, _ in arithmetic_task(2000, 1234, 9)}) == 74  # GRPO keeps the other 74


def test_compose_knows_the_local_task_sizes():
    cfg = SimpleNamespace(
        eval=SimpleNamespace(num_examples=100),
        rl=SimpleNamespace(max_operand=9),
        data=SimpleNamespace(split="98,1,1", num_documents=2000),
    )
    assert local_task_sizes(cfg) == {"nemotron_arithmetic": 26, "nemotron_topic_choice": 100, "nemotron_tiny_ppl": 20}
