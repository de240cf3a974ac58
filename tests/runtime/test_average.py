"""`python -m nemotron.checkpoint average`: the mean of identical checkpoints is identical, of two the
element-wise (weighted) mean; checkpoints of different shapes are refused, the tensor named."""

from __future__ import annotations

import re

import runtime_support
import torch

from nemotron.hf.cli import main
from nemotron.hf.dcp_compat import read_region
from nemotron.hf.megatron_side import saved_shapes
from nemotron.runtime.stages import pretrain

run_config = runtime_support.run_config  # fixtures shared by the runtime tests
tiny_data_dir = runtime_support.tiny_data_dir


def _tensors(path):
    return {
        k: read_region(str(path), k, [0] * len(s), s)
        for k, s in saved_shapes(str(path)).items()
        if not k.startswith("optimizer.")
    }


def test_average_of_identical_is_identical_of_two_the_mean_and_shapes_must_match(run_config, tmp_path, capsys):
    ck = tmp_path / "ck"
    pretrain.run(run_config("gpt/pretrain", "train.steps=2", "checkpoint.save_interval=1", f"checkpoint.dir={ck}"))
    one, two = ck / "iter_0000001", ck / "iter_0000002"
    capsys.readouterr()
    assert main(["average", str(one), str(one), str(tmp_path / "same")]) == 0
    assert re.search(r"^average: \d+ tensors in [\d.]+ s \([\d,.]+ tensors/s\)$", capsys.readouterr().err, re.M)
    a, b = _tensors(one), _tensors(two)
    assert all(torch.equal(v, a[k]) for k, v in _tensors(tmp_path / "same" / "iter_0000000").items())
    assert main(["average", str(one), str(two), str(tmp_path / "w"), "--weights", "1", "3"]) == 0
    for key, value in _tensors(tmp_path / "w" / "iter_0000000").items():
        expected = (a[key].double() * 0.25 + b[key].double() * 0.75).to(value.dtype)
        assert torch.equal(value, expected), key
    other = tmp_path / "other"
    pretrain.run(run_config("gpt/pretrain", "train.steps=1", "model.ffn_hidden_size=32", f"checkpoint.dir={other}"))
    capsys.readouterr()
    assert main(["average", str(one), str(other / "iter_0000001"), str(tmp_path / "bad")]) == 2
    assert "linear_fc1.weight' has shape" in capsys.readouterr().err
