"""An SFT run tracked on the real MLflow server records its packed chat data (an `sft_data` artifact)
and the pretrained checkpoint it started from as lineage inputs, in the registry and in MLflow; a LoRA
SFT run and its pretraining run record trainable and total parameters; merging the adapters records
base -> adapters -> merged."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import OmegaConf

from nemotron.tracking.buffer import RunFiles
from nemotron.common.checkpoint_index import latest
from nemotron.hf.cli import main
from nemotron.hf.megatron_side import saved_shapes
from nemotron.tracking.registry import Registry, lineage as lineage_of, ref_of


def _config(root: Path, data_dir: Path, recipe: str, run: str, *overrides: str):
    from nemotron.config.compose import compose_run

    outputs = root / "outputs"
    argv = [f"+recipe={recipe}", "train.num_threads=1", "tracker=mlflow", f"data.cache_dir={data_dir}",
            f"paths.output_root={outputs}", "tracker.flush_interval_s=0.2", "tracker.close_timeout_s=5",
            "train.steps=3", "train.eval_interval=0", *overrides]
    cfg = compose_run(argv, run_dir=outputs / recipe / run)
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def test_sft_run_records_its_data_and_pretrained_checkpoint(mlflow_server, client, data_dir, tmp_path):
    from nemotron.runtime.stages import pretrain
    from nemotron.runtime.stages import sft

    uri = [f"tracker.uri={mlflow_server.uri}", "tracker.experiment=sft-lineage"]
    pre = _config(tmp_path, data_dir, "gpt/pretrain", "r1", *uri)
    pretrain.run(pre)
    tuned = _config(tmp_path, data_dir, "gpt/sft", "r2", *uri, "peft=lora")
    assert tuned.checkpoint.pretrained == "newest:gpt/pretrain"
    sft.run(tuned)

    registry = Registry(tmp_path / "outputs" / "artifacts.json")
    data = registry.get("sft_data/sft_tiny")
    assert data["kind"] == "sft_data" and data["path"].endswith("sft.json")
    run_id = RunFiles(tuned.run_dir).run_id
    tags = client.get_run(run_id).data.tags
    inputs = [i.strip() for i in tags["nemotron.inputs"].split(",")]
    assert {i.split("@")[0] for i in inputs} >= {"sft_data/sft_tiny", "checkpoint/gpt/pretrain"}
    assert tags["nemotron.outputs"].startswith("checkpoint/gpt/sft@")
    datasets = client.get_run(run_id).inputs.dataset_inputs
    assert "sft_data/sft_tiny" in [d.dataset.name.split("@")[0] for d in datasets]
    output = registry.get("checkpoint/gpt/sft")
    assert set(output["inputs"]) == set(inputs)

    pre_metrics = client.get_run(RunFiles(pre.run_dir).run_id).data.metrics  # full training: all trainable
    assert pre_metrics["params/trainable"] == pre_metrics["params/total"] > 0
    lora_metrics = client.get_run(run_id).data.metrics
    shapes = saved_shapes(latest(output["path"]).path)  # the adapters' checkpoint: their weights and Adam state
    n_adapters = sum(math.prod(s) for k, s in shapes.items() if ".adapter." in k and not k.startswith("optimizer."))
    assert lora_metrics["params/trainable"] == n_adapters  # the adapters; the frozen base in the total only
    assert lora_metrics["params/total"] == pre_metrics["params/total"] + n_adapters

    merged = tmp_path / "merged"
    assert main(["merge-lora", output["path"], str(merged), "--registry", str(registry.path)]) == 0
    merged_entry = registry.get("model/merged")
    pretrained = registry.get("checkpoint/gpt/pretrain")
    assert set(merged_entry["inputs"]) == {ref_of(output), ref_of(pretrained)}  # base -> adapters -> merged
    chain = "\n".join(lineage_of(registry, "model/merged"))
    assert ref_of(output) in chain and ref_of(pretrained) in chain and "sft_data/sft_tiny" in chain


def test_a_grpo_run_records_its_prompts_and_starting_weights_not_a_pretraining_blend(tmp_path):
    from nemotron.tracking import lineage

    weights = tmp_path / "sft" / "checkpoints" / "iter_0000002"
    weights.mkdir(parents=True)
    (weights / "model.pt").write_bytes(b"weights")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "1+1=", "answer": "2"}\n')
    missing_blend = tmp_path / "nowhere" / "blend.json"  # its data group's blend: RL does not train on it
    cfg = _config(tmp_path, tmp_path / "no-data", "gpt/rl", "r1", f"checkpoint.pretrained={weights}",
                  f"rl.prompt_file={prompts}", f"data.blend_file={missing_blend}", "data.generate_tiny=false")
    found = lineage.record(cfg, OmegaConf.to_container(cfg), run_id=None, finished=False)
    assert sorted(e["name"] for e in found["inputs"]) == ["checkpoint/pretrained", "prompts/prompts"]
    assert Registry(lineage.registry_path(cfg)).names() == ["checkpoint/pretrained", "prompts/prompts"]
