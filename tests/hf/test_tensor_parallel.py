"""Import into TP=2 (two gloo ranks under PyTorch's elastic launcher, as a user would run it): the
checkpoint loads at TP=1 with transformers' logits, and exports back to the original tensors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hf_support import hf_logits, llama_dir
from test_roundtrip import _tensors

from nemotron.hf import exporter, verify
from nemotron.hf import megatron_side as ours
from nemotron.runtime import distributed

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_tensor_parallel_2_import_gives_the_tensor_parallel_1_logits(tmp_path):
    hf = llama_dir(tmp_path / "llama", tied=False)
    ckpt = tmp_path / "tp2"
    argv = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        "-m",
        "nemotron.checkpoint",
        "import-hf",
        str(hf),
        "--tp",
        "2",
        "--out",
        str(ckpt),
        "--registry",
        str(tmp_path / "r.json"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
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
