"""DPO runs of the tiny models in-process: the policy starts as the reference (loss ln 2, rewards 0),
a resumed run repeats an uninterrupted one bitwise (the reference reloaded from its source), reward
accuracy and margin rise on the synthetic pairs, and the hybrid (nano3) recipe trains too.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import runtime_support
from picture_support import shown

from nemotron.runtime.stages import dpo, pretrain
from nemotron.runtime.train import loop

run_config = runtime_support.run_config  # fixtures shared by the runtime tests
tiny_data_dir = runtime_support.tiny_data_dir

REPO = Path(__file__).resolve().parents[2]
COMMON = ["train.log_interval=1", "train.eval_interval=0"]


@pytest.fixture(scope="module")
def pretrained(tiny_data_dir, tmp_path_factory) -> Path:
    """A gpt/pretrain checkpoint dir (6 steps) on the embedded data, shared by the module."""
    root = tmp_path_factory.mktemp("dpo_pretrain")
    cfg = runtime_support.resolved_run_config(
        [
            "+recipe=gpt/pretrain",
            "train.num_threads=1",
            "tracker=none",
            f"data.cache_dir={tiny_data_dir}",
            "train.steps=6",
            f"checkpoint.dir={root / 'ck'}",
        ],
        run_dir=root / "run",
    )
    pretrain.run(cfg)
    return root / "ck"


def test_the_policy_starts_as_the_reference_loaded_from_the_checkpoint(run_config, pretrained, capsys):
    result = dpo.run(run_config("gpt/dpo", *COMMON, "train.steps=2", f"checkpoint.pretrained={pretrained}"))
    assert result.losses[0] == pytest.approx(math.log(2), abs=1e-6)
    assert result.stage_metrics[0] == pytest.approx(dict.fromkeys(dpo.STATS, 0.0), abs=1e-6)
    assert result.losses[1] != pytest.approx(math.log(2), abs=1e-4)  # the step moved the policy
    out = capsys.readouterr().out
    assert f"reference model: {pretrained / 'iter_0000006'} (step 6), frozen" in out
    assert f"initialised from pretrained weights {pretrained / 'iter_0000006'}" in out
    assert "rewards/accuracies" in out  # on the progress line


def test_resumed_dpo_repeats_the_uninterrupted_run_bitwise(run_config, pretrained, tmp_path, monkeypatch):
    common = [
        "train.steps=6",
        "train.eval_interval=3",
        "train.eval_iters=1",
        "train.log_interval=1",
        "model.hidden_dropout=0.1",
        f"checkpoint.pretrained={pretrained}",
    ]
    straight = dpo.run(run_config("gpt/dpo", *common, f"checkpoint.dir={tmp_path / 'a'}"))
    interrupted = run_config("gpt/dpo", *common, f"checkpoint.dir={tmp_path / 'b'}", "checkpoint.save_interval=3")
    runtime_support.killed_at_step(dpo.run, interrupted, monkeypatch, step=5)
    resumed = dpo.run(interrupted)
    assert resumed.start_step == 3 and resumed.losses == straight.losses[3:]
    assert resumed.stage_metrics == straight.stage_metrics[3:]
    assert resumed.val_losses == {6: straight.val_losses[6]}


LEARN_STEPS, WINDOW = 40, 10
ACCURACY_GAIN, MARGIN_GAIN = 0.08, 0.2
"""Stated margins: mean reward accuracy / margin of the last WINDOW steps over the first WINDOW's."""


def test_reward_accuracy_and_margin_rise_on_the_synthetic_pairs(run_config, pretrained):
    cfg = run_config(
        "gpt/dpo",
        "train.log_interval=10",
        "train.eval_interval=0",
        f"train.steps={LEARN_STEPS}",
        "train.global_batch_size=16",
        "optim.lr=1e-3",
        "dpo.beta=0.5",
        f"checkpoint.pretrained={pretrained}",
    )
    result = dpo.run(cfg)

    def mean(key, steps):
        return sum(m[key] for m in steps) / len(steps)

    first, last = result.stage_metrics[:WINDOW], result.stage_metrics[-WINDOW:]
    print({k: (round(mean(k, first), 3), round(mean(k, last), 3)) for k in dpo.STATS})
    assert mean("rewards/accuracies", last) > mean("rewards/accuracies", first) + ACCURACY_GAIN
    assert mean("rewards/margins", last) > mean("rewards/margins", first) + MARGIN_GAIN
    assert sum(result.losses[-WINDOW:]) < sum(result.losses[:WINDOW])
    panels = shown(Path(cfg.run_dir) / "loss.png")  # tracker=none: drawn all the same
    assert panels["loss"] == [("loss", LEARN_STEPS)] and panels["learning rate"] == [("lr", LEARN_STEPS)]
    assert panels["preference accuracy (DPO)"] == [("rewards/accuracies", LEARN_STEPS)]
    assert panels["reward margin (DPO)"][0] == ("rewards/margins", LEARN_STEPS)


def test_the_hybrid_recipe_trains_with_mamba_layers(run_config):
    result = dpo.run(
        run_config(
            "nano3/dpo",
            *COMMON,
            "train.steps=2",
            "checkpoint.pretrained=null",
            "train.global_batch_size=4",
            "train.micro_batch_size=2",
        )
    )
    assert result.losses[0] == pytest.approx(math.log(2), abs=1e-6)
    assert math.isfinite(result.losses[1]) and len(result.stage_metrics) == 2


@pytest.mark.slow
def test_dpo_tensor_parallel_2_reproduces_tensor_parallel_1(run_config, tiny_data_dir, tmp_path):
    common = [
        "train.steps=3",
        "train.log_interval=1",
        "train.num_threads=1",
        "train.eval_interval=0",
        "train.global_batch_size=8",
        "checkpoint.pretrained=null",
    ]
    reference = dpo.run(run_config("gpt/dpo", *common))
    argv = [
        sys.executable,
        "-m",
        "nemotron.train",
        "+recipe=gpt/dpo",
        "resources.procs_per_node=2",
        "parallel.tensor_model_parallel_size=2",
        f"paths.output_root={tmp_path}",
        f"data.cache_dir={tiny_data_dir}",
        "tracker=jsonl",
        *common,
    ]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (metrics,) = tmp_path.rglob("metrics.jsonl")
    records = [r for r in map(json.loads, metrics.read_text().splitlines()) if "loss" in r]
    assert [r["loss"] for r in records] == pytest.approx(reference.losses, abs=1e-4)
    accuracies = [r["rewards/accuracies"] for r in records]
    assert accuracies == pytest.approx([m["rewards/accuracies"] for m in reference.stage_metrics], abs=1e-6)


def test_a_precomputed_reference_gives_the_in_step_losses_and_is_freed(run_config, pretrained, tmp_path, capsys):
    """`dpo.precompute_reference`: the reference's log-probs of every train and validation pair once,
    before the first step; the same losses (training and validation) as the in-step reference, bitwise
    on one process, and no reference model kept."""
    common = ["train.steps=4", "train.eval_interval=2", "train.eval_iters=1", f"checkpoint.pretrained={pretrained}"]
    cfg = run_config("gpt/dpo", *common, f"checkpoint.dir={tmp_path / 'in_step'}")
    in_step = dpo.DPOStage.from_config(cfg)
    expected = loop.run(cfg, in_step)
    assert in_step.reference is not None
    cfg = run_config("gpt/dpo", *common, "dpo.precompute_reference=true", f"checkpoint.dir={tmp_path / 'pre'}")
    precomputed = dpo.DPOStage.from_config(cfg)
    got = loop.run(cfg, precomputed)
    assert got.losses == expected.losses and got.val_losses == expected.val_losses and got.val_losses
    assert got.stage_metrics == expected.stage_metrics
    assert precomputed.reference is None  # freed after the pass
    assert re.search(
        r"reference log-probs of 1000 pairs precomputed in [\d.]+ s; reference model freed", capsys.readouterr().out
    )


@pytest.mark.slow
def test_a_reference_precomputed_on_two_data_parallel_ranks_gives_the_same_losses(run_config, tiny_data_dir, tmp_path):
    """Each data-parallel rank computes its share of the pairs and the shares are exchanged: two ranks
    train with the losses of one process computing the reference in the step."""
    common = ["train.steps=3", "train.global_batch_size=8", "train.micro_batch_size=2", "checkpoint.pretrained=null"]
    expected = dpo.run(run_config("gpt/dpo", *COMMON, "train.num_threads=1", *common))
    losses = runtime_support.train_two_ranks(
        tmp_path, tiny_data_dir, "gpt/dpo", *common, "dpo.precompute_reference=true"
    )
    assert losses == pytest.approx(expected.losses, abs=1e-5)
