"""Import into TP=2 (two gloo ranks under PyTorch's elastic launcher, as a user would run it): the
checkpoint loads at TP=1 with transformers' logits, and exports back to the original tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from dist_support import torchrun
from hf_support import hf_logits, llama_dir
from test_roundtrip import _tensors

from nemotron.hf import exporter, verify
from nemotron.hf import megatron_side as ours
from nemotron.runtime.train import distributed

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tensor_parallel_2_import_gives_the_tensor_parallel_1_logits(tmp_path):
    hf = llama_dir(tmp_path / "llama", tied=False)
    ckpt = tmp_path / "tp2"
    result = torchrun(
        ["-m", "nemotron.checkpoint", "import-hf", hf, "--tp", "2", "--out", ckpt, "--registry", tmp_path / "r.json"]
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert '"tp": 2' in (ckpt / "iter_0000000" / "nemotron_checkpoint.json").read_text()
    found, _, model = exporter.checkpoint_and_model(str(ckpt), None, [])
    tokens = verify.prompts(256)
    logits = ours.logits(exporter.load_model(found, model), tokens)
    distributed.teardown()
    assert verify.max_abs_diff(logits, hf_logits(hf, tokens)) <= 1e-4
    exporter.export_hf(str(ckpt), str(tmp_path / "back"), registry=str(tmp_path / "r.json"))
    distributed.teardown()
    before, after = _tensors(hf), _tensors(tmp_path / "back")
    assert sorted(before) == sorted(after) and all(torch.equal(before[k], after[k]) for k in before)
