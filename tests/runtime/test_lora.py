"""LoRA SFT of the tiny gpt model in-process (`peft=lora`): the adapted model starts as the base,
only adapters train (no gradient buffer or optimizer state for the base), adapter-only checkpoints
resume bitwise and refuse another base, and merged weights give the adapted model's logits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import runtime_support
import torch

from nemotron.common.checkpoint_index import CheckpointError, latest
from nemotron.runtime.stages import pretrain
from nemotron.runtime.stages.sft import SFTStage
from nemotron.runtime.train import loop
from nemotron.tracking.registry import Registry

run_config = runtime_support.run_config  # fixtures shared by the runtime tests
tiny_data_dir = runtime_support.tiny_data_dir

LORA = ["peft=lora", "peft.rank=4", "train.steps=4", "train.log_interval=1", "train.eval_interval=0", "optim.lr=0.01"]


class Recording(SFTStage):
    """SFT that keeps the run (model, optimizer) and each step's base weights before the step."""

    def train_step(self, run):
        self.run = run
        if not hasattr(self, "start"):
            self.start = {
                k: v.detach().clone()
                for k, v in run.model.module.state_dict().items()
                if "adapter." not in k and torch.is_tensor(v)
            }
        return super().train_step(run)


@pytest.fixture
def pretrained(run_config, tmp_path) -> Path:
    """A gpt/pretrain checkpoint dir (3 steps) on the embedded data."""
    ck = tmp_path / "pretrain_ck"
    pretrain.run(run_config("gpt/pretrain", "train.steps=3", f"checkpoint.dir={ck}"))
    return ck


def test_only_adapters_train_and_the_base_has_no_grad_buffer_or_optimizer_state(run_config, pretrained, tmp_path):
    stage = Recording()
    cfg = run_config("gpt/sft", *LORA, f"checkpoint.pretrained={pretrained}", f"checkpoint.dir={tmp_path / 'a'}")
    result = loop.run(cfg, stage)
    assert len(result.losses) == 4
    model = stage.run.model
    after = model.module.state_dict()
    for key, before in stage.start.items():
        assert torch.equal(after[key], before), key  # every base tensor bitwise equal
    adapters = {k: p for k, p in model.module.named_parameters() if p.requires_grad}
    assert adapters and all(".adapter.linear_" in k for k in adapters)
    assert any(p.abs().sum() > 0 for k, p in adapters.items() if "linear_out" in k)  # B moved off 0
    n_adapter = sum(p.numel() for p in adapters.values())
    assert sum(b.numel_unpadded for b in model.buffers) == n_adapter  # DDP: adapter grads only
    state = stage.run.optimizer.optimizer.state if hasattr(stage.run.optimizer, "optimizer") else None
    assert state is not None and sum(s["exp_avg"].numel() for s in state.values()) == n_adapter
    saved = latest(str(tmp_path / "a"))
    assert saved.meta["lora"]["base"] == str((pretrained / "iter_0000003").resolve())
    assert saved.meta["lora"]["base_hash"].startswith("sha256:")


def _logits(model, tokens):
    from nemotron.hf import megatron_side as ours

    return ours.logits(model, tokens)


def test_step_zero_equals_base_merge_equals_adapted_and_another_base_is_refused(
    run_config, pretrained, tmp_path, capsys
):
    from nemotron.hf import megatron_side as ours
    from nemotron.hf.cli import main
    from nemotron.hf.merge_lora import adapted_model
    from nemotron.runtime.peft import lora

    cfg = run_config("gpt/sft", *LORA, f"checkpoint.pretrained={pretrained}", f"checkpoint.dir={tmp_path / 'a'}")
    loop.run(cfg, SFTStage())
    model, run_cfg, found = adapted_model(str(tmp_path / "a"))
    tokens = torch.randint(0, int(run_cfg.model.vocab_size), (2, 16), generator=torch.Generator().manual_seed(0))
    adapted = _logits(model, tokens)
    base = ours.build(run_cfg)
    ours.load(run_cfg, base, str(pretrained))
    base_logits = _logits(base, tokens)
    lora.apply(run_cfg, base)  # fresh adapters: B = 0
    assert torch.equal(_logits(base, tokens), base_logits)  # step 0 is the base model
    assert (adapted - base_logits).abs().max() > 1e-4  # training moved the adapters
    capsys.readouterr()
    registry = tmp_path / "artifacts.json"
    assert main(["merge-lora", str(tmp_path / "a"), str(tmp_path / "merged"), "--registry", str(registry)]) == 0
    assert re.search(r"^merge-lora: 3 phases in [\d.]+ s", capsys.readouterr().err, re.M)  # load, merge, save
    merged_entry = Registry(registry).get("model/merged")  # its adapters and base named (unregistered here)
    assert merged_entry["base"] == str((pretrained / "iter_0000003").resolve()) and merged_entry["inputs"] == []
    merged = ours.build(run_cfg)
    ours.load(run_cfg, merged, str(tmp_path / "merged"))
    assert (_logits(merged, tokens) - adapted).abs().max() <= 1e-5
    marker = pretrained / "iter_0000003" / "nemotron_checkpoint.json"
    marker.write_text(marker.read_text().replace('"step"', '"step" ', 1))  # the base changed
    with pytest.raises(CheckpointError, match=r"trained on base .*sha256:.*not on .*sha256:"):
        adapted_model(str(tmp_path / "a"))


def test_resumed_lora_run_repeats_the_uninterrupted_run_bitwise(run_config, pretrained, tmp_path, monkeypatch):
    common = [*LORA, "train.steps=4", "peft.dropout=0.1", f"checkpoint.pretrained={pretrained}"]
    straight = loop.run(run_config("gpt/sft", *common, f"checkpoint.dir={tmp_path / 'a'}"), SFTStage())
    interrupted = run_config("gpt/sft", *common, f"checkpoint.dir={tmp_path / 'b'}", "checkpoint.save_interval=2")
    runtime_support.killed_at_step(lambda cfg: loop.run(cfg, SFTStage()), interrupted, monkeypatch, step=3)
    saved = latest(str(tmp_path / "b"))
    assert all(".adapter." in k or k.startswith("optimizer.") for k in _model_keys(saved.path))
    resumed = loop.run(interrupted, SFTStage())
    assert resumed.start_step == 2 and resumed.losses == straight.losses[2:]


def _model_keys(path):
    from nemotron.hf.megatron_side import saved_shapes

    return list(saved_shapes(path))


def test_peft_format_export_loads_in_peft_with_the_adapted_models_logits(run_config, pretrained, tmp_path, capsys):
    """Adapters trained 2 steps, exported in PEFT format (fused qkv and fc1 split as the base is),
    loaded by transformers + peft on top of the export-hf'd base: the adapted model's logits."""
    import json

    from omegaconf import OmegaConf
    from peft import PeftModel
    from safetensors import safe_open

    from nemotron.hf import verify
    from nemotron.hf.cli import main
    from nemotron.hf.merge_lora import adapted_model
    from nemotron.runtime import transformers_compat

    adapters, registry = tmp_path / "a", tmp_path / "artifacts.json"
    cfg = run_config(
        "gpt/sft", *LORA, "train.steps=2", f"checkpoint.pretrained={pretrained}", f"checkpoint.dir={adapters}"
    )
    loop.run(cfg, SFTStage())
    model, run_cfg, _ = adapted_model(str(adapters))
    tokens = verify.prompts(int(run_cfg.model.vocab_size))
    ours = _logits(model, tokens)  # before the CLI, which tears the process group down
    (pretrained / "model.yaml").write_text(OmegaConf.to_yaml(run_cfg.model))  # what export-hf reads
    capsys.readouterr()
    assert main(["export-hf", str(pretrained), str(tmp_path / "hf"), "--registry", str(registry)]) == 0
    argv = ["export-hf", "--adapter", str(adapters), str(tmp_path / "peft"), "--base-model", str(tmp_path / "hf")]
    assert main([*argv, "--registry", str(registry)]) == 0
    config = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert (
        config["peft_type"] == "LORA" and config["r"] == 4 and config["base_model_name_or_path"] == str(tmp_path / "hf")
    )
    assert config["target_modules"] == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    with safe_open(str(tmp_path / "peft" / "adapter_model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight" in keys
    assert len(keys) == 2 * 7 * int(run_cfg.model.num_layers)
    base = transformers_compat.load_causal_lm(str(tmp_path / "hf"))
    base_logits = transformers_compat.causal_lm_logits(base, tokens)
    theirs = transformers_compat.causal_lm_logits(PeftModel.from_pretrained(base, str(tmp_path / "peft")), tokens)
    assert verify.max_abs_diff(ours, base_logits) > 1e-3  # the adapters matter
    assert verify.max_abs_diff(ours, theirs) <= 1e-4
    assert registry.exists() and "hf/peft" in registry.read_text()

    marker = Path(latest(str(adapters)).path) / "nemotron_checkpoint.json"
    capsys.readouterr()
    assert main(["export-hf", str(adapters), str(tmp_path / "plain")]) == 2  # adapters only: not a full export
    assert "holds LoRA adapters only: export them with export-hf --adapter" in capsys.readouterr().err
    meta = json.loads(marker.read_text())
    meta["lora"]["model"]["arch"] = "hybrid"  # as a nano3 run's adapters say
    marker.write_text(json.dumps(meta))
    assert main(["export-hf", "--adapter", str(adapters), str(tmp_path / "nano3")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the PEFT export covers the gpt/Llama mapping" in err[0], err
    assert not (tmp_path / "nano3").exists()


def test_nano3_lora_trains_saves_and_merges_with_the_adapted_models_logits(run_config, tmp_path, capsys):
    """nano3 (Mamba in/out projections, attention, MoE shared expert): adapters save, merge and match."""
    from nemotron.hf import megatron_side as ours
    from nemotron.hf.cli import main
    from nemotron.hf.merge_lora import adapted_model

    base, adapters = tmp_path / "pretrain_ck", tmp_path / "a"
    pretrain.run(run_config("nano3/pretrain", "train.steps=2", f"checkpoint.dir={base}"))
    loop.run(
        run_config("nano3/sft", *LORA, "train.steps=2", f"checkpoint.pretrained={base}", f"checkpoint.dir={adapters}"),
        SFTStage(),
    )
    line = r"^peft=lora: adapters on (\d+) layers \((.*)\); (\d+) routed-expert layers carry none"
    said = re.search(line, capsys.readouterr().out, re.M)
    assert said and "in_proj" in said.group(2) and int(said.group(3)) > 0  # the log says the experts stay frozen
    model, run_cfg, found = adapted_model(str(adapters))
    assert any(t.endswith("mixer.in_proj") for t in found.meta["lora"]["targets"])
    assert int(said.group(1)) == len(found.meta["lora"]["targets"])
    tokens = torch.randint(0, int(run_cfg.model.vocab_size), (2, 16), generator=torch.Generator().manual_seed(0))
    adapted = _logits(model, tokens)
    merged = tmp_path / "merged"
    assert main(["merge-lora", str(adapters), str(merged), "--registry", str(tmp_path / "artifacts.json")]) == 0
    full = ours.build(run_cfg)
    ours.load(run_cfg, full, str(merged))
    assert (_logits(full, tokens) - adapted).abs().max() <= 1e-5


def test_lora_dpo_trains_the_adapters_against_the_base_and_merges_with_the_adapted_logits(
    run_config, pretrained, tmp_path, capsys
):
    """`peft=lora` on the DPO stage (reference precomputed): the policy starts as the reference (loss
    ln 2), the adapters move, and `merge-lora` of its adapter-only checkpoint gives the adapted logits."""
    from nemotron.hf import megatron_side as ours
    from nemotron.hf.cli import main
    from nemotron.hf.merge_lora import adapted_model
    from nemotron.runtime.stages import dpo

    cfg = run_config(
        "gpt/dpo", *LORA, "dpo.precompute_reference=true", "train.global_batch_size=8",
        f"checkpoint.pretrained={pretrained}", f"checkpoint.dir={tmp_path / 'a'}",
    )  # fmt: skip
    result = dpo.run(cfg)
    assert result.losses[0] == pytest.approx(0.6931471805599453, abs=1e-6) and result.losses[-1] != result.losses[0]
    model, run_cfg, _ = adapted_model(str(tmp_path / "a"))
    tokens = torch.randint(0, int(run_cfg.model.vocab_size), (2, 16), generator=torch.Generator().manual_seed(0))
    base = ours.build(run_cfg)
    ours.load(run_cfg, base, str(pretrained))
    adapted = _logits(model, tokens)
    assert (adapted - _logits(base, tokens)).abs().max() > 1e-5  # DPO moved the adapters
    assert main(["merge-lora", str(tmp_path / "a"), str(tmp_path / "merged")]) == 0
    merged = ours.build(run_cfg)
    ours.load(run_cfg, merged, str(tmp_path / "merged"))
    assert (_logits(merged, tokens) - adapted).abs().max() <= 1e-5
