"""SFT runs of the tiny models in-process: the pretrained weights are what step 0 sees, a resumed run
repeats an uninterrupted one bitwise, a checkpoint of another shape is refused naming the tensor, and
(slow, two ranks) TP=2 reproduces TP=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nemotron.runtime.stages import pretrain

from nemotron.runtime.checkpoint import store as checkpoint
from nemotron.runtime.stages import sft
from nemotron.common.checkpoint_index import PretrainedNotFound, pretrained_checkpoint
from runtime_support import killed_at_step, run_config, tiny_data_dir  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[2]
COMMON = ["train.steps=4", "train.log_interval=1", "train.eval_interval=0"]


@pytest.fixture
def pretrained(run_config, tmp_path) -> Path:
    """A gpt/pretrain checkpoint dir (6 steps) on the embedded data."""
    ck = tmp_path / "pretrain_ck"
    pretrain.run(run_config("gpt/pretrain", "train.steps=6", f"checkpoint.dir={ck}"))
    return ck


def _expected_first_loss(cfg, ck: Path) -> float:
    """The pretrained weights' masked loss on SFT's first global batch, computed here directly."""
    import torch.distributed as dist
    from megatron.core import dist_checkpointing, parallel_state

    from nemotron.runtime import cpu_compat
    from nemotron.runtime.data import gpt as data
    from nemotron.runtime.train import distributed
    from nemotron.runtime.data import sft as sft_data
    from nemotron.runtime.model.build import build_model

    distributed.init_process_group()
    parallel_state.initialize_model_parallel(1, 1)
    try:
        cpu_compat.install()
        cpu_compat.seed_model_parallel(1)
        tokenizer, train_ds, _ = sft_data.build_sft_datasets(cfg, attention_mask=True)
        model, _ = build_model(cfg, tokenizer.vocab_size)
        (path,) = sorted(ck.glob("iter_*"))[-1:]
        loaded = dist_checkpointing.load({"model": model.sharded_state_dict()}, str(path))
        model.load_state_dict(loaded["model"])
        batches = data.batch_iterator(train_ds, cfg.train.micro_batch_size, 0, 1)
        total = count = 0.0
        with torch.no_grad():
            for _ in range(cfg.train.global_batch_size // cfg.train.micro_batch_size):
                output, loss = sft.SFTStage().forward_step(batches, model)
                s, n, _ = loss(output)
                total, count = total + float(s), count + float(n)
        return total / count
    finally:
        cpu_compat.destroy_model_parallel_groups()
        dist.destroy_process_group()


def test_step_zero_loss_is_the_pretrained_models_loss(run_config, pretrained, tmp_path, capsys):
    cfg = run_config("gpt/sft", *COMMON, f"checkpoint.pretrained={pretrained}")
    expected = _expected_first_loss(cfg, pretrained)
    result = sft.run(cfg)
    assert result.losses[0] == pytest.approx(expected, abs=1e-5)
    assert f"initialised from pretrained weights {pretrained / 'iter_0000006'}" in capsys.readouterr().out
    random_start = sft.run(run_config("gpt/sft", *COMMON, "checkpoint.pretrained=null",
                                      f"checkpoint.dir={tmp_path / 'random'}"))
    assert abs(random_start.losses[0] - result.losses[0]) > 0.05  # not the seed's weights


def test_resumed_sft_repeats_the_uninterrupted_run_bitwise(run_config, pretrained, tmp_path, monkeypatch):
    common = ["train.steps=6", "train.eval_interval=3", "train.eval_iters=1",
              "model.hidden_dropout=0.1", f"checkpoint.pretrained={pretrained}"]
    straight = sft.run(run_config("gpt/sft", *common, f"checkpoint.dir={tmp_path / 'a'}"))
    interrupted = run_config("gpt/sft", *common, f"checkpoint.dir={tmp_path / 'b'}",
                             "checkpoint.save_interval=3")
    killed_at_step(sft.run, interrupted, monkeypatch, step=5)
    resumed = sft.run(interrupted)
    assert resumed.start_step == 3 and resumed.losses == straight.losses[3:]
    assert resumed.val_losses == {6: straight.val_losses[6]}


def test_pretrained_checkpoint_of_another_shape_names_the_tensor(run_config, pretrained):
    cfg = run_config("gpt/sft", *COMMON, f"checkpoint.pretrained={pretrained}",
                     "model.ffn_hidden_size=96")
    with pytest.raises(checkpoint.CheckpointError, match=r"tensor 'decoder\.layers\.mlp\.linear_fc1"
                                                         r"\.weight' has shape .*pretrained"):
        sft.run(cfg)


def test_newest_pretrained_checkpoint_or_one_line_saying_how_to_make_one(tmp_path):
    with pytest.raises(PretrainedNotFound, match=r"newest:nano3/pretrain: no complete checkpoint under "
                                                 r".*make one with `python -m nemotron.train "
                                                 r"\+recipe=nano3/pretrain`"):
        pretrained_checkpoint("newest:nano3/pretrain", str(tmp_path))
    for run, step in (("2026-01-01_00-00-00", 3), ("2026-01-02_00-00-00", 5)):
        folder = tmp_path / "nano3/pretrain" / run / "checkpoints" / f"iter_{step:07d}"
        folder.mkdir(parents=True)
        (folder / "nemotron_checkpoint.json").write_text(json.dumps({"files": {}}))
    assert pretrained_checkpoint("newest:nano3/pretrain", str(tmp_path)).step == 5


@pytest.mark.slow
def test_sft_tensor_parallel_2_reproduces_tensor_parallel_1(run_config, tiny_data_dir, tmp_path):
    common = ["train.steps=5", "train.log_interval=1", "train.num_threads=1",
              "checkpoint.pretrained=null"]
    reference = sft.run(run_config("gpt/sft", *common)).losses
    argv = [sys.executable, "-m", "nemotron.train", "+recipe=gpt/sft", "resources.procs_per_node=2",
            "parallel.tensor_model_parallel_size=2", f"paths.output_root={tmp_path}",
            f"data.cache_dir={tiny_data_dir}", "tracker=jsonl", *common]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (metrics,) = tmp_path.rglob("metrics.jsonl")
    losses = [r["loss"] for r in map(json.loads, metrics.read_text().splitlines()) if "loss" in r]
    assert losses == pytest.approx(reference, abs=1e-4)
