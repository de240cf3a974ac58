"""Checkpoints: bitwise resume, keep-last, atomic saves, corrupt/partial folders, bad shapes,
timeouts, and (slow, two ranks) resharding TP=2 -> TP=1 and DP=2 -> DP=1, and what cannot reshard.

The runs train the tiny GPT in-process for a few steps each; `saved_run` trains once per module and
the tests that only damage or read its checkpoints work on a copy.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
from dist_support import torchrun
from omegaconf import OmegaConf
from runtime_support import resolved_run_config, run_config, tiny_data_dir  # noqa: F401 - fixtures

from nemotron.runtime.stages import pretrain

from nemotron.runtime.train import loop as train_loop

from nemotron.runtime.train import step as train_step_module
from nemotron.runtime.checkpoint import store as checkpoint

GPT = "gpt/pretrain"


def _interrupt_at(monkeypatch, step: int) -> None:
    """Make the next run raise (like a killed job) when it reaches `step`."""
    real = train_step_module.train_step

    def train_step(run):
        if run.position.step + 1 == step:
            raise KeyboardInterrupt(f"simulated crash before step {step}")
        return real(run)

    monkeypatch.setattr(train_step_module, "train_step", train_step)


class _TrackerWithRunId:
    """A tracker exposing `run_id`, recording the config it was opened with."""

    opened: list = []

    def __init__(self, cfg, rank=0):
        self.run_id = "run-abc"
        _TrackerWithRunId.opened.append(cfg)

    def log(self, step, metrics):
        pass

    def close(self, status="FINISHED"):
        pass


@pytest.mark.parametrize("distributed_optimizer", [False, True])
def test_interrupted_and_resumed_run_has_bitwise_identical_losses(run_config, tmp_path, monkeypatch,
                                                                   capsys, distributed_optimizer):
    common = ["train.steps=8", "model.hidden_dropout=0.1", "model.attention_dropout=0.1",
              "train.eval_interval=4", "train.eval_iters=1",
              f"parallel.use_distributed_optimizer={distributed_optimizer}"]
    straight = pretrain.run(run_config(GPT, *common, f"checkpoint.dir={tmp_path / 'a'}",
                                       "checkpoint.save_at_end=false"))
    interrupted = run_config(GPT, *common, f"checkpoint.dir={tmp_path / 'b'}",
                             "checkpoint.save_interval=4")
    monkeypatch.setattr(train_loop, "open_tracker", _TrackerWithRunId)
    with monkeypatch.context() as m:
        _interrupt_at(m, 5)
        with pytest.raises(KeyboardInterrupt):
            pretrain.run(interrupted)
    resumed = pretrain.run(interrupted)

    assert resumed.start_step == 4 and resumed.losses == straight.losses[4:]
    assert resumed.val_losses == {8: straight.val_losses[8]}
    out = capsys.readouterr().out
    assert f"resumed from {tmp_path / 'b' / 'iter_0000004'} at step 4" in out
    assert "done | 8/8 steps (resumed at 4)" in out
    assert _TrackerWithRunId.opened[-1].tracker.resume_run_id == "run-abc"
    assert checkpoint.latest_run_id(str(tmp_path / "b")) == "run-abc"


def test_keep_last_deletes_older_checkpoints(run_config, tmp_path, capsys):
    pretrain.run(run_config(GPT, "train.steps=6", "checkpoint.save_interval=2",
                            "checkpoint.keep_last=2", f"checkpoint.dir={tmp_path / 'ck'}"))

    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["iter_0000004", "iter_0000006"]
    line = [x for x in capsys.readouterr().out.splitlines() if "iter_0000006" in x][0]
    assert line.startswith(f"checkpoint saved: {tmp_path / 'ck' / 'iter_0000006'} (step 6, ")


@pytest.fixture(scope="module")
def saved_run(tiny_data_dir, tmp_path_factory):
    """A 4-step run with checkpoints at steps 2 and 4: (overrides, losses, checkpoint dir)."""
    root = tmp_path_factory.mktemp("saved_run")
    overrides = [f"+recipe={GPT}", "train.num_threads=1", "tracker=none",
                 f"data.cache_dir={tiny_data_dir}", "train.steps=4", "checkpoint.save_interval=2",
                 "checkpoint.keep_last=0"]
    cfg = resolved_run_config([*overrides, f"checkpoint.dir={root / 'ck'}"], root / "run")
    return overrides, pretrain.run(cfg).losses, root / "ck"


def _copy(saved_run, tmp_path) -> Path:
    return Path(shutil.copytree(saved_run[2], tmp_path / "ck"))


def _rerun(saved_run, ck: Path, tmp_path, *more: str):
    cfg = resolved_run_config([*saved_run[0], f"checkpoint.dir={ck}", *more], tmp_path / "run")
    return pretrain.run(cfg)


def test_leftover_temp_folder_and_unmarked_folder_are_never_resumed(saved_run, tmp_path):
    ck = _copy(saved_run, tmp_path)
    crashed = ck / "iter_0000006.tmp-dead0000"  # a save killed half-way
    crashed.mkdir()
    (crashed / "__0_0.distcp").write_bytes(b"partial")
    unmarked = Path(shutil.copytree(ck / "iter_0000004", ck / "iter_0000008"))
    (unmarked / checkpoint.MARKER).unlink()

    with pytest.warns(checkpoint.CheckpointWarning, match="iter_0000008: no nemotron_checkpoint"):
        found = checkpoint.latest(str(ck))
    assert found.step == 4 and found.path == str(ck / "iter_0000004")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", checkpoint.CheckpointWarning)
        result = _rerun(saved_run, ck, tmp_path, "train.steps=6")
    assert result.start_step == 4 and len(result.losses) == 2
    assert not crashed.exists()  # the next successful save cleans leftovers up


def test_truncated_latest_checkpoint_falls_back_to_previous_with_warning(saved_run, tmp_path):
    ck = _copy(saved_run, tmp_path)
    shard = ck / "iter_0000004" / "__0_0.distcp"
    shard.write_bytes(shard.read_bytes()[:100])

    with pytest.warns(checkpoint.CheckpointWarning, match=r"iter_0000004: __0_0.distcp has 100 "):
        checkpoint.latest(str(ck))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", checkpoint.CheckpointWarning)
        result = _rerun(saved_run, ck, tmp_path)

    assert result.start_step == 2 and result.losses == saved_run[1][2:]


def test_checkpoint_of_another_model_shape_names_the_tensor(saved_run, tmp_path, capsys):
    with pytest.raises(checkpoint.CheckpointError) as info:
        _rerun(saved_run, tmp_path / "own", tmp_path, f"checkpoint.load_dir={saved_run[2]}",
               "model.ffn_hidden_size=256")

    message = str(info.value)
    assert "tensor 'decoder.layers.mlp.linear_fc1.weight' has shape (2, 384, 64) in the " \
           "checkpoint but this run expects (2, 512, 64)" in message, message
    assert "different model (model.* settings)" in message and "\n" not in message
    assert "FAILED during setup: CheckpointError" in capsys.readouterr().out


def test_load_dir_without_checkpoint_fails_clearly(run_config, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(checkpoint.CheckpointError, match="load_dir=.*holds no complete checkpoint"):
        pretrain.run(run_config(GPT, f"checkpoint.load_dir={empty}"))


def test_hung_writer_becomes_a_timeout_error(run_config, tmp_path, monkeypatch):
    # Without psutil the torch_dist writer processes die before reporting and the parent waits
    # forever (seen on this machine): the save must fail after checkpoint.timeout_s instead.
    from megatron.core.dist_checkpointing.strategies import filesystem_async

    monkeypatch.setattr(filesystem_async, "HAVE_PSUTIL", False)
    ck = tmp_path / "ck"
    with pytest.raises(checkpoint.CheckpointTimeoutError, match="checkpoint.timeout_s=1 s"):
        pretrain.run(run_config(GPT, "train.steps=1", f"checkpoint.dir={ck}",
                                "checkpoint.timeout_s=1"))
    assert checkpoint.latest(str(ck)) is None and not (ck / "iter_0000001").exists()


# ---- two ranks (slow) ----------------------------------------------------------------------------

_DRIVER = '''
import json, sys
import torch.distributed as dist
from omegaconf import OmegaConf
from nemotron.runtime.stages import pretrain

if __name__ == "__main__":
    dist.init_process_group("gloo")  # shared by the runs below (each run leaves it in place)
    results = []
    for path in sys.argv[2:]:
        try:
            results.append({"losses": pretrain.run(OmegaConf.load(path)).losses})
        except Exception as err:
            results.append({"error": f"{type(err).__name__}: {err}"})
    if dist.get_rank() == 0:
        json.dump(results, open(sys.argv[1], "w"))
    dist.destroy_process_group()
'''


def _torchrun(tmp_path: Path, configs: list) -> tuple:
    """Run `configs` one after another in one 2-rank torchrun job: (results, stdout)."""
    paths = []
    for i, cfg in enumerate(configs):
        paths.append(tmp_path / f"cfg{i}.yaml")
        OmegaConf.save(cfg, paths[-1])
    (tmp_path / "driver.py").write_text(_DRIVER)
    proc = torchrun([tmp_path / "driver.py", tmp_path / "out.json", *paths],
                    env={"PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "out.json").read_text()), proc.stdout


@pytest.mark.slow
def test_two_rank_checkpoints_reshard_resume_bitwise_and_explain_what_cannot(run_config, tmp_path):
    # make_vocab_size_divisible_by=192 pads the vocabulary to 768 at TP=2 but 576 at TP=1.
    vocab = ["model.make_vocab_size_divisible_by=192"]
    tp2 = ["parallel.tensor_model_parallel_size=2"]
    tp1 = [f"checkpoint.load_dir={tmp_path / 'tp2'}"]
    dist_opt = ["parallel.use_distributed_optimizer=true", "train.steps=5"]
    at_3 = ["checkpoint.save_interval=3", "checkpoint.save_at_end=false"]
    runs = [["train.steps=4", *vocab, *tp2, *at_3],
            ["train.steps=4", *vocab, *tp1],
            ["train.steps=4", *vocab, *tp1, "model.vocab_size=768"],
            [*dist_opt, *at_3],
            [*dist_opt, f"checkpoint.load_dir={tmp_path / 'dp2'}"],
            [*dist_opt, *tp2, f"checkpoint.load_dir={tmp_path / 'dp2'}"]]
    names = ["tp2", "tp1_refused", "tp1", "dp2", "dp2_resumed", "tp2_refused"]
    configs = [run_config(GPT, *run, f"checkpoint.dir={tmp_path / name}")
               for name, run in zip(names, runs)]
    (saved, refused, resharded, dp2, dp2_resumed, tp2_refused), out = _torchrun(tmp_path, configs)

    assert "tensor 'embedding.word_embeddings.weight' has shape (768, 64)" in refused["error"]
    assert "saved with world 2 TP2" in refused["error"]
    assert "set model.vocab_size=768" in refused["error"]
    assert resharded["losses"] == pytest.approx(saved["losses"][3:], abs=1e-4)
    assert "RNG states start fresh" in out
    assert dp2_resumed["losses"] == dp2["losses"][3:]  # distributed optimizer, same layout: exact
    assert "reshards only to another data-parallel size" in tp2_refused["error"]
    # The data-parallel-sharded optimizer state also reshards to one rank (DP=2 -> DP=1).
    one_rank = pretrain.run(run_config(GPT, *dist_opt, f"checkpoint.load_dir={tmp_path / 'dp2'}",
                                       f"checkpoint.dir={tmp_path / 'dp1'}"))
    assert one_rank.losses == pytest.approx(dp2["losses"][3:], abs=1e-4)


def test_save_fsyncs_every_file_and_folder_before_the_marker_and_the_parent_after(run_config, tmp_path, monkeypatch):
    """Durability of a save, checked by recording `os.fsync` calls (the path each descriptor points at):
    no real power loss can be simulated here. Every file of the checkpoint and its folder are synced
    before the marker, the marker itself before its rename, and `checkpoint.dir` after the folder's rename."""
    import os

    calls = []
    real = os.fsync

    def fsync(fd):
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    root = tmp_path / "ck"
    pretrain.run(run_config(GPT, "train.steps=2", "checkpoint.save_interval=2", f"checkpoint.dir={root}"))

    final = root / "iter_0000002"
    assert [p.name for p in root.iterdir()] == [final.name]
    tmp_names = {Path(c).relative_to(root).parts[0] for c in calls if c.startswith(str(root) + "/")}
    assert len(tmp_names) == 1 and ".tmp-" in next(iter(tmp_names))
    tmp = root / next(iter(tmp_names))
    marker_at = max(i for i, c in enumerate(calls) if c.startswith(str(tmp / checkpoint.MARKER) + ".tmp"))
    before_marker = set(calls[:marker_at])
    for path in final.rglob("*"):
        rel = path.relative_to(final)
        if path.name != checkpoint.MARKER:
            assert str(tmp / rel) in before_marker, f"{rel} not fsynced before the marker"
    assert str(tmp) in before_marker
    assert calls[marker_at + 1] == str(tmp)  # the marker's rename inside the folder
    assert calls[-1] == str(root)  # the folder's rename into place
    assert not [p for p in final.iterdir() if ".tmp" in p.name]
