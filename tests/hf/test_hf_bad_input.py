"""Bad input to import-hf / export-hf: one line naming the file, key or tensor, exit status 2,
no traceback, nothing written. Run in-process through the CLI's main() (one subprocess checks the
real exit status)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hf_support import llama_dir

from nemotron.hf import cli


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> Path:
    return llama_dir(tmp_path_factory.mktemp("bad") / "llama", tied=False)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def run(capsys, *argv) -> tuple:
    code = cli.main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def test_missing_config_json(tmp_path, llama, capsys):
    hf = _copy(llama, tmp_path / "hf")
    (hf / "config.json").unlink()
    code, err = run(capsys, "import-hf", str(hf), "--out", str(tmp_path / "out"))
    assert (
        code == 2
        and err == f"import-hf: error: {hf / 'config.json'}: missing (a Hugging Face model directory has config.json)"
    )
    assert not (tmp_path / "out").exists()


def test_missing_weights(tmp_path, llama, capsys):
    hf = _copy(llama, tmp_path / "hf")
    (hf / "model.safetensors").unlink()
    code, err = run(capsys, "import-hf", str(hf), "--out", str(tmp_path / "out"))
    assert code == 2 and "model.safetensors: missing" in err and "\n" not in err


def test_unmapped_architecture_lists_the_mapped_ones(tmp_path, llama, capsys):
    hf = _copy(llama, tmp_path / "hf")
    config = json.loads((hf / "config.json").read_text())
    (hf / "config.json").write_text(json.dumps({**config, "architectures": ["MistralForCausalLM"]}))
    code, err = run(capsys, "import-hf", str(hf), "--out", str(tmp_path / "out"))
    assert code == 2 and "'MistralForCausalLM' is not mapped" in err
    assert "LlamaForCausalLM" in err and "NemotronHForCausalLM" in err and "\n" not in err


def test_mismatching_model_option_names_each_field(tmp_path, llama, capsys):
    code, err = run(
        capsys, "import-hf", str(llama), "model=gpt_tiny", "model.num_layers=3", "--out", str(tmp_path / "o")
    )
    lines = err.splitlines()
    assert code == 2 and "2 mismatches" in lines[0]
    assert lines[1:] == [
        "model.num_layers=3 but config.json implies 2",
        "model.share_embeddings_and_output_weights=True but config.json implies False",
    ]
    assert not (tmp_path / "o").exists()


def test_shape_mismatch_names_tensor_and_both_shapes(tmp_path, llama, capsys):
    from safetensors.torch import load_file, save_file

    hf = _copy(llama, tmp_path / "hf")
    tensors = load_file(str(hf / "model.safetensors"))
    tensors["model.layers.1.mlp.up_proj.weight"] = tensors["model.layers.1.mlp.up_proj.weight"][:100]
    save_file(tensors, str(hf / "model.safetensors"), {"format": "pt"})
    code, err = run(capsys, "import-hf", str(hf), "--out", str(tmp_path / "out"))
    assert code == 2 and "\n" not in err
    assert "'model.layers.1.mlp.up_proj.weight' has shape (100, 64)" in err and "needs (192, 64)" in err
    assert not (tmp_path / "out").exists()


def test_truncated_safetensors_is_named_before_anything_is_written(tmp_path, llama, capsys):
    hf = _copy(llama, tmp_path / "hf")
    data = (hf / "model.safetensors").read_bytes()
    (hf / "model.safetensors").write_bytes(data[: len(data) - 1000])
    code, err = run(capsys, "import-hf", str(hf), "--out", str(tmp_path / "out"))
    assert code == 2 and f"{hf / 'model.safetensors'}: truncated" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_existing_output_is_refused_without_overwrite(tmp_path, llama, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, err = run(capsys, "import-hf", str(llama), "--out", str(out))
    assert code == 2 and err == f"import-hf: error: {out}: exists and is not empty; pass --overwrite to replace it"
    code, err = run(capsys, "export-hf", str(llama), str(out))
    assert code == 2 and "holds no complete checkpoint" in err
    assert (out / "keep.txt").read_text() == "mine"


def test_cli_exit_status_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "nemotron.checkpoint", "import-hf", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip()
        == f"import-hf: error: {tmp_path / 'nothing'}: not a directory (give a Hugging Face model directory)"
    )
