"""An eval run tracked on the real MLflow server records the checkpoint it evaluated as its lineage
input and its results (`eval/<recipe>`) as its output, in the registry and in MLflow, with its
`eval/<task>/<metric>` metrics."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from nemotron.tracking.buffer import RunFiles
from nemotron.tracking.registry import Registry, lineage


def _config(root: Path, data_dir: Path, recipe: str, run: str, *overrides: str):
    from nemotron.config.compose import compose_run

    outputs = root / "outputs"
    argv = [f"+recipe={recipe}", "train.num_threads=1", "tracker=mlflow", f"data.cache_dir={data_dir}",
            f"paths.output_root={outputs}", "tracker.flush_interval_s=0.2", "tracker.close_timeout_s=5",
            "train.eval_interval=0", *overrides]
    cfg = compose_run(argv, run_dir=outputs / recipe / run)
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def test_eval_run_records_the_checkpoint_it_evaluated(mlflow_server, client, data_dir, tmp_path):
    from nemotron.runtime.eval import stage
    from nemotron.runtime.stages import pretrain

    uri = [f"tracker.uri={mlflow_server.uri}", "tracker.experiment=eval-lineage"]
    pretrain.run(_config(tmp_path, data_dir, "gpt/pretrain", "r1", "train.steps=2", *uri))
    cfg = _config(tmp_path, data_dir, "gpt/eval", "e1", "checkpoint.pretrained=newest:gpt/pretrain",
                  "eval.tasks=[nemotron_arithmetic]", "eval.limit=2", "eval.bootstrap_iters=0", *uri)
    stage.run(cfg)

    registry = Registry(tmp_path / "outputs" / "artifacts.json")
    checkpoint = registry.get("checkpoint/gpt/pretrain")
    result = registry.get("eval/gpt/eval")
    assert result["kind"] == "eval" and result["path"].endswith("e1/eval_results.json")
    assert result["inputs"] == [f"checkpoint/gpt/pretrain@{checkpoint['version']}"]
    chain = "\n".join(lineage(registry, "eval/gpt/eval"))
    assert "checkpoint/gpt/pretrain@1" in chain and "data/" in chain  # eval <- checkpoint <- data

    run_id = RunFiles(cfg.run_dir).run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["nemotron.inputs"] == "checkpoint/gpt/pretrain@1"
    assert run.data.tags["nemotron.outputs"] == "eval/gpt/eval@1"
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["checkpoint/gpt/pretrain@1"]
    assert "eval/nemotron_arithmetic/exact_match_strip" in run.data.metrics  # the task's `strip` filter

    from nemotron.tracking.eval_compare import load_scores

    by_id, by_dir = load_scores([run_id, str(cfg.run_dir)], mlflow_server.uri)  # the store and the run dir agree
    assert by_id.scores == by_dir.scores and "nemotron_arithmetic exact_match_strip" in by_id.scores
    assert by_id.checkpoint == "checkpoint/gpt/pretrain@1" and by_dir.checkpoint.endswith("r1/checkpoints/iter_0000002")
