"""Typed artifacts: the registry, `${art:name}` / `${art:name@n}`, content hashes, lineage."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from nemotron.tracking.cli import main as tracking_cli
from nemotron.tracking.lineage import consumed
from nemotron.tracking.registry import ArtifactNotFound, Registry, content_hash, lineage, register_resolver


@pytest.fixture
def registry(tmp_path):
    """Data v1 -> checkpoint v1 and v2 (the second after the checkpoint changed)."""
    reg = Registry(tmp_path / "artifacts.json")
    data, ckpt = tmp_path / "data", tmp_path / "run1" / "checkpoints"
    data.mkdir()
    (data / "blend.json").write_text("{}")
    ckpt.mkdir(parents=True)
    (ckpt / "w.bin").write_bytes(b"1")
    producer = {"run_id": "r1", "run_dir": str(tmp_path / "run1"), "config": str(tmp_path / "run1/config.yaml")}
    reg.register("data/tiny", "data", data / "blend.json", content_hash([data / "blend.json"]), producer, inputs=[])
    reg.register("checkpoint/gpt", "checkpoint", ckpt, content_hash([ckpt]), producer, inputs=["data/tiny@1"])
    assert reg.register("checkpoint/gpt", "checkpoint", ckpt, content_hash([ckpt]), producer)["version"] == 1
    (ckpt / "w.bin").write_bytes(b"2")
    reg.register("checkpoint/gpt", "checkpoint", ckpt, content_hash([ckpt]), producer, inputs=["data/tiny@1"])
    return reg


def test_art_resolves_latest_or_pinned_version(registry, tmp_path):
    register_resolver()
    cfg = OmegaConf.create({"tracker": {"registry": str(registry.path)},
                            "latest": "${art:checkpoint/gpt}", "pinned": "${art:checkpoint/gpt@1}"})
    assert cfg.latest == cfg.pinned == str(tmp_path / "run1" / "checkpoints")
    assert [e["hash"] for e in registry.load()["checkpoint/gpt"]][0] != registry.get("checkpoint/gpt")["hash"]
    assert registry.get("checkpoint/gpt")["version"] == 2


def test_unknown_artifact_name_lists_the_known_ones(registry):
    register_resolver()
    cfg = OmegaConf.create({"tracker": {"registry": str(registry.path)}, "x": "${art:checkpoint/gtp}"})
    with pytest.raises(Exception) as err:
        _ = cfg.x
    assert "no artifact named 'checkpoint/gtp'" in str(err.value)
    assert "known: checkpoint/gpt, data/tiny" in str(err.value)
    with pytest.raises(ArtifactNotFound, match=r"has no version 7 .* versions: @1, @2"):
        registry.get("checkpoint/gpt@7")


def test_content_hash_changes_with_content_and_samples_huge_files(tmp_path, monkeypatch):
    f = tmp_path / "f.bin"
    f.write_bytes(b"a" * 100)
    first = content_hash([f])
    f.write_bytes(b"b" * 100)
    assert content_hash([f])[0] != first[0] and first[1] == "full"
    monkeypatch.setattr("nemotron.tracking.registry.SAMPLE_ABOVE_BYTES", 10)
    monkeypatch.setattr("nemotron.tracking.registry.SAMPLE_BYTES", 4)
    assert content_hash([f])[1] == "sampled"


def test_config_values_naming_registered_paths_are_inputs(registry, tmp_path):
    found = consumed({"run_dir": str(tmp_path / "run2"),
                      "checkpoint": {"load_dir": str(tmp_path / "run1" / "checkpoints")}}, registry)
    assert [(e["name"], e["version"]) for e in found] == [("checkpoint/gpt", 2)]


def test_lineage_command_shows_checkpoint_run_data_and_config(registry, tmp_path, capsys):
    lines = lineage(registry, "checkpoint/gpt@1")
    assert lines[0].startswith("checkpoint/gpt@1  [checkpoint]")
    assert "produced by run r1" in lines[1] and "config.yaml" in lines[2]
    assert any(line.strip().startswith("data/tiny@1  [data]") for line in lines)
    assert tracking_cli(["lineage", "checkpoint/gpt", "--registry", str(registry.path)]) == 0
    assert capsys.readouterr().out.startswith("checkpoint/gpt@2")
    assert tracking_cli(["lineage", "nope", "--registry", str(registry.path)]) == 2
    assert "known: checkpoint/gpt, data/tiny" in capsys.readouterr().err
