"""GRPO runs of the tiny models in-process (real Megatron-Core, CPU): at the first step the ratio is
1 and the KL to the reference is 0, the mean reward on the embedded task rises, a resumed run repeats
the uninterrupted one, a reward returning a non-number names the prompt, and two local ranks (DP=2,
started by the entry point through PyTorch's elastic launcher) train and save together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from picture_support import shown
from runtime_support import run_config, tiny_data_dir  # noqa: F401 - fixtures

from nemotron.runtime import rewards
from nemotron.runtime.stages import pretrain
from nemotron.runtime.stages.rl import grpo
from nemotron.runtime.stages.rl import metrics as rl_metrics
from nemotron.runtime.stages.rl import stage as rl
from nemotron.runtime.stages.rl import step as rl_step

FAST = ["train.log_interval=1", "rl.max_new_tokens=4", "rl.group_size=4"]
VARIED = "rl.rewards=[{_target_: nemotron.runtime.rewards.regex_match, pattern: '[aeiou]'}]"
"""A reward even an untrained model earns on some samples only (non-zero advantages)."""


@pytest.fixture
def spy(monkeypatch):
    """Records what grpo.token_terms returns and each step's metrics."""
    seen = {"terms": [], "metrics": []}
    real_terms, real_metrics = grpo.token_terms, rl_metrics.step_metrics

    def terms(*args, **kwargs):
        out = real_terms(*args, **kwargs)
        seen["terms"].append(out)
        return out

    def metrics(*args, **kwargs):
        out = real_metrics(*args, **kwargs)
        seen["metrics"].append(dict(out))
        return out

    monkeypatch.setattr(grpo, "token_terms", terms)
    monkeypatch.setattr(rl_metrics, "step_metrics", metrics)
    return seen


@pytest.mark.parametrize("recipe", ["gpt/rl", "nano3/rl"])
def test_first_step_ratio_is_one_and_kl_is_zero(run_config, tmp_path, spy, recipe, capsys):
    pretrained = "null"
    if recipe == "gpt/rl":  # the reference loads the same pretrained weights as the policy
        pretrain.run(run_config("gpt/pretrain", "train.steps=3", f"checkpoint.dir={tmp_path / 'pre'}"))
        pretrained = str(tmp_path / "pre")
    rl.run(
        run_config(
            recipe, *FAST, "train.steps=1", "rl.updates_per_batch=2", VARIED, f"checkpoint.pretrained={pretrained}"
        )
    )
    n = len(spy["terms"]) // 2  # micro-batches of the first update, then of the second
    for terms in spy["terms"][:n]:
        assert torch.equal(terms["ratio"], torch.ones_like(terms["ratio"]))
        assert torch.equal(terms["kl"], torch.zeros_like(terms["kl"]))
    assert any(not torch.equal(t["ratio"], torch.ones_like(t["ratio"])) for t in spy["terms"][n:])
    m = spy["metrics"][0]
    assert m["kl"] > 0 and m["entropy"] > 0 and m["response_length"] > 0  # the second update moved
    out = capsys.readouterr().out
    if recipe == "gpt/rl":  # one line for the policy, one for the reference
        assert out.count("initialised from pretrained weights") == 1
        assert f"reference model: {tmp_path / 'pre' / 'iter_0000003'} (step 3), frozen" in out
    else:
        assert "reference model: the policy's initial weights (train.seed), frozen" in out


def test_mean_reward_rises_on_the_embedded_task(run_config, tmp_path, capsys):
    """From random weights (no gpt/sft checkpoint under paths.output_root: a fresh clone)."""
    metrics = tmp_path / "metrics.jsonl"
    result = rl.run(
        run_config(
            "gpt/rl",
            "train.steps=40",
            "tracker=jsonl",
            f"tracker.path={metrics}",
            f"paths.output_root={tmp_path / 'outputs'}",
        )
    )
    out = capsys.readouterr().out
    assert "warning: checkpoint.pretrained=newest:gpt/sft: no checkpoint yet, so RL starts from random" in out
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    steps = [r for r in rows if "reward_mean" in r]
    assert len(steps) == 40 == result.steps
    for key in (
        "reward_std",
        "reward/numeric_answer",
        "reward/regex_match",
        "kl",
        "clip_fraction",
        "entropy",
        "response_length",
        "generation_tokens_per_s",
        "training_tokens_per_s",
        "loss",
    ):
        assert key in steps[0], key
    first = sum(r["reward_mean"] for r in steps[:5]) / 5
    last = sum(r["reward_mean"] for r in steps[-5:]) / 5
    assert last > first + 0.2, (first, last)  # seeded: ~0.02 -> ~0.47 (the format reward is learnt)
    panels = shown(tmp_path / "run" / "loss.png")  # tracker=jsonl: drawn from its metrics file
    assert panels["loss"][0] == ("loss", 40) and panels["learning rate"] == [("lr", 40)]
    assert [label for label, _ in panels["reward (GRPO)"]] == [
        "reward_mean",
        "reward/numeric_answer",
        "reward/regex_match",
    ]


def test_resumed_rl_repeats_the_uninterrupted_run(run_config, tmp_path, monkeypatch, spy):
    common = [*FAST, "train.steps=6", "rl.updates_per_batch=2", "checkpoint.pretrained=null", VARIED]
    straight = rl.run(run_config("gpt/rl", *common, f"checkpoint.dir={tmp_path / 'a'}"))
    straight_rewards = [m["reward_mean"] for m in spy["metrics"]]
    spy["metrics"].clear()
    interrupted = run_config("gpt/rl", *common, f"checkpoint.dir={tmp_path / 'b'}", "checkpoint.save_interval=3")
    real = rl_step.rollouts

    def crash_at_step_5(run, stage):
        if run.position.step + 1 == 5:
            raise KeyboardInterrupt("simulated kill")
        return real(run, stage)

    with monkeypatch.context() as m:
        m.setattr(rl_step, "rollouts", crash_at_step_5)
        with pytest.raises(KeyboardInterrupt):
            rl.run(interrupted)
    spy["metrics"].clear()
    resumed = rl.run(interrupted)
    assert resumed.start_step == 3 and resumed.losses == straight.losses[3:]
    assert [m["reward_mean"] for m in spy["metrics"]] == straight_rewards[3:]
    assert len(set(straight.losses)) > 1


def test_a_reward_returning_a_non_number_names_the_prompt(run_config):
    cfg = run_config(
        "gpt/rl", *FAST, "train.steps=1", "checkpoint.pretrained=null", "rl.rewards=[{_target_: posixpath.join}]"
    )
    with pytest.raises(
        rewards.RewardError,
        match=r"reward posixpath\.join returned '.*' for prompt \d+: "
        r"a reward must return a finite number",
    ):
        rl.run(cfg)


@pytest.mark.slow
def test_two_local_ranks_train_grpo_data_parallel(tiny_data_dir, tmp_path):
    argv = [
        sys.executable,
        "-m",
        "nemotron.train",
        "+recipe=gpt/rl",
        "resources.procs_per_node=2",
        f"paths.output_root={tmp_path}",
        f"data.cache_dir={tiny_data_dir}",
        "tracker=jsonl",
        "train.steps=3",
        "train.num_threads=1",
        "checkpoint.pretrained=null",
        *FAST,
    ]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=repo, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (log,) = tmp_path.rglob("train.log")
    text = log.read_text()
    assert "done | 3/3 steps" in text and "world 2 (TP1 PP1 CP1 EP1 DP2)" in text, text[-2000:]
    (metrics,) = tmp_path.rglob("metrics.jsonl")
    steps = [r for r in map(json.loads, metrics.read_text().splitlines()) if "reward_mean" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]  # rank 0 logs the reduced metrics once a step
    assert all(r["response_length"] > 0 and r["generation_tokens_per_s"] > 0 for r in steps)
    (final,) = tmp_path.rglob("iter_0000003")
    assert (final / "nemotron_checkpoint.json").exists()
