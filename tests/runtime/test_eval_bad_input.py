"""Bad input the eval stage meets at run time, each one line: a checkpoint of another shape with no
record beside it for compose to read (the tensor named, with both shapes), and a task whose data is
not available offline (the dataset named)."""

from __future__ import annotations

import pytest
from runtime_support import run_config, tiny_data_dir  # noqa: F401

from nemotron.common.checkpoint_index import CheckpointError
from nemotron.runtime.eval import harness
from nemotron.runtime.eval import stage as eval_stage
from nemotron.runtime.stages.registry import stage_runner


def test_a_checkpoint_of_another_shape_names_the_tensor_and_both_shapes(run_config, tmp_path):  # noqa: F811
    ckpt = tmp_path / "ckpt"  # no config.yaml above it: compose cannot tell, the load does
    stage_runner("pretrain")(
        run_config("gpt/pretrain", "train.steps=1", "train.eval_interval=0", f"checkpoint.dir={ckpt}")
    )
    cfg = run_config("gpt/eval", f"checkpoint.pretrained={ckpt}", "model.hidden_size=32", "eval.limit=1")
    with pytest.raises(CheckpointError) as err:
        eval_stage.run(cfg)
    line = str(err.value)
    assert "\n" not in line
    assert "tensor 'embedding.word_embeddings.weight' has shape (512, 64) in the checkpoint" in line
    assert "this run expects (512, 32)" in line


def test_a_task_whose_data_is_not_offline_names_the_dataset(run_config, tmp_path, monkeypatch):  # noqa: F811
    from lm_eval.api.model import LM

    class NoModel(LM):  # the data is loaded before any request reaches a model
        def loglikelihood(self, requests):
            raise AssertionError("no request expected")

        loglikelihood_rolling = generate_until = loglikelihood

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty-cache"))
    cfg = run_config("gpt/eval", "checkpoint.pretrained=null", "eval.tasks=[hellaswag]", "eval.limit=1")
    manager = harness.task_manager(tmp_path, ["hellaswag"])  # not a local task: lm-eval's whole index
    harness.check_tasks(["hellaswag"], manager)  # lm-eval knows the task
    with pytest.raises(harness.EvalTaskError) as err:
        harness.evaluate(NoModel(), cfg, manager)
    line = str(err.value)
    assert "\n" not in line and "Rowan/hellaswag" in line and "not available offline" in line
