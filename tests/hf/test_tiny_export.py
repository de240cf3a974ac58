"""The model a newcomer trains first (`+recipe=nano3/pretrain`: model=nano3_tiny) is Nemotron 3 Nano's
architecture in miniature, so the whole chain works on it: a few steps of training, export-hf to a
NemotronHForCausalLM directory, and transformers loading it with the same logits (CPU, in-process)."""

from __future__ import annotations

import contextlib
import io
import json

from hf_support import hf_logits
from omegaconf import OmegaConf

from nemotron.config.compose import compose_run
from nemotron.hf import exporter, verify
from nemotron.hf import megatron_side as ours
from nemotron.runtime.stages import pretrain
from nemotron.runtime.train import distributed

STEPS = 3


def tiny_run(tmp_path):
    """The resolved config of the tiny nano3 default, shortened to STEPS steps, written to its run dir."""
    overrides = [
        "+recipe=nano3/pretrain",
        f"train.steps={STEPS}",
        "train.num_threads=1",
        "tracker=none",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    cfg = compose_run(overrides, run_dir=tmp_path / "run")
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(OmegaConf.to_yaml(resolved))  # as the launcher leaves it
    return resolved


def test_tiny_nano3_default_trains_exports_and_loads_in_transformers(tmp_path):
    cfg = tiny_run(tmp_path)
    assert pretrain.run(cfg).steps == STEPS
    distributed.teardown()
    out = tmp_path / "hf"
    with contextlib.redirect_stderr(io.StringIO()):
        record = exporter.export_hf(
            cfg.checkpoint.dir, str(out), verify=True, registry=str(tmp_path / "artifacts.json")
        )
    distributed.teardown()

    hf = json.loads((out / "config.json").read_text())
    assert hf["architectures"] == ["NemotronHForCausalLM"] and hf["moe_shared_expert_intermediate_size"] == 128
    assert hf["layers_block_type"] == ["linear_attention", "full_attention", "linear_attention", "moe"]
    assert hf["routed_scaling_factor"] == 2.5
    assert record["verify"]["passed"]
    found, _, model = exporter.checkpoint_and_model(cfg.checkpoint.dir, None, [])
    tokens = verify.prompts(hf["vocab_size"])
    mine = ours.logits(exporter.load_model(found, model), tokens)
    distributed.teardown()
    theirs = hf_logits(out, tokens)
    assert theirs.std() > 0.1 and verify.max_abs_diff(mine, theirs) <= 1e-4
