"""Import tiny HF models (built here with random weights), compare logits with transformers', export
them back, reload in transformers, and compare tensors bit for bit (fp32, CPU, in-process)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from pathlib import Path

import pytest
import torch
from hf_support import hf_logits, llama_dir, nemotron_h_dir
from safetensors import safe_open

from nemotron.hf import exporter, importer, verify
from nemotron.hf import megatron_side as ours
from nemotron.runtime.train import distributed

CASES = ["llama_tied", "llama_untied", "nemotron_h"]


def _tensors(path: Path) -> dict:
    out = {}
    for shard in sorted(path.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            out.update({k: f.get_tensor(k) for k in f.keys()})
    return out


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """case -> (hf dir, checkpoint dir, export dir, our logits, export record, registry)."""
    root = tmp_path_factory.mktemp("hf")
    registry = root / "artifacts.json"
    made = {
        "llama_tied": lambda p: llama_dir(p, tied=True),
        "llama_untied": lambda p: llama_dir(p, tied=False),
        "nemotron_h": nemotron_h_dir,
    }
    tokens = verify.prompts(256)
    results = {}
    for case in CASES:
        hf = made[case](root / case)
        ckpt = root / f"{case}-megatron"
        with contextlib.redirect_stderr(io.StringIO()) as err:
            importer.import_hf(str(hf), None, [], str(ckpt), registry=str(registry))
        PROGRESS[case] = err.getvalue()
        distributed.teardown()
        found, _, model = exporter.checkpoint_and_model(str(ckpt), None, [])
        logits = ours.logits(exporter.load_model(found, model), tokens)
        distributed.teardown()
        out = root / f"{case}-hf"
        with contextlib.redirect_stderr(io.StringIO()) as err:
            record = exporter.export_hf(
                str(ckpt), str(out), verify=True, registry=str(registry), max_shard_bytes=40_000
            )
        PROGRESS[case] += err.getvalue()
        sys.stderr.write(PROGRESS[case])
        distributed.teardown()
        results[case] = (hf, ckpt, out, logits, record, registry)
    return results


PROGRESS: dict = {}
"""case -> what import and export wrote to stderr."""


@pytest.mark.parametrize("case", CASES)
def test_import_and_export_end_with_a_line_counting_the_tensors(converted, case):
    out = converted[case][2]
    imported = re.search(r"^import-hf: (\d+) tensors in [\d.]+ s \([\d,.]+ tensors/s\)$", PROGRESS[case], re.M)
    exported = re.search(r"^export-hf: (\d+) tensors in [\d.]+ s \([\d,.]+ tensors/s\)$", PROGRESS[case], re.M)
    assert imported and exported, PROGRESS[case]
    assert int(imported.group(1)) == int(exported.group(1)) == len(_tensors(out))


@pytest.mark.parametrize("case", CASES)
def test_imported_model_gives_transformers_logits(converted, case):
    hf, _, _, ours_logits, _, _ = converted[case]
    theirs = hf_logits(hf, verify.prompts(256))
    assert theirs.std() > 0.1  # not a degenerate model that any mapping would match
    assert verify.max_abs_diff(ours_logits, theirs) <= 1e-4


@pytest.mark.parametrize("case", CASES)
def test_export_reloads_in_transformers_with_the_same_logits(converted, case):
    hf, _, out, _, record, _ = converted[case]
    tokens = verify.prompts(256)
    assert verify.max_abs_diff(hf_logits(out, tokens), hf_logits(hf, tokens)) <= 1e-4
    assert record["verify"]["passed"] and record["verify"]["max_abs_logit_diff"] <= 1e-4


@pytest.mark.parametrize("case", CASES)
def test_import_then_export_gives_identical_tensors(converted, case):
    hf, _, out, _, _, _ = converted[case]
    before, after = _tensors(hf), _tensors(out)
    assert sorted(before) == sorted(after)
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name


def test_export_is_sharded_with_an_index(converted):
    _, _, out, _, _, _ = converted["llama_untied"]
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and shards == sorted(p.name for p in out.glob("*.safetensors"))
    assert json.loads((out / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]


def test_registry_records_import_source_hash_and_export_lineage(converted):
    from nemotron.tracking.registry import Registry, content_hash

    hf, ckpt, out, _, record, registry = converted["nemotron_h"]
    reg = Registry(registry)
    imported = reg.get(f"model/{ckpt.name}")
    assert imported["kind"] == "model" and imported["source"] == str(hf.resolve())
    assert imported["source_hash"] == content_hash([hf])[0]
    exported = reg.get(f"hf/{out.name}")
    assert exported["inputs"] == [f"model/{ckpt.name}@1"]
    assert exported["verify"]["passed"] and exported["source_checkpoint"].startswith(str(ckpt.resolve()))
