"""bench/gpu_check.py proven on the CPU: `--cpu-smoke` runs every check (tiny models, 2 steps) and
writes one JSON with a status for each, the packed SFT comparison inside its tolerance; a check in
its own process (the default on a GPU) reports back the same way; without CUDA and without
`--cpu-smoke` the script refuses in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu_check.py"
sys.path.insert(0, str(REPO / "bench"))


def _run(*args, cwd, timeout=240):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """(completed process, report) of every check in one process on the CPU."""
    root = tmp_path_factory.mktemp("gpu_check")
    out = root / "gpu_check.json"
    proc = _run("--cpu-smoke", "--isolate", "none", "--json", str(out), "--work-dir", str(root / "work"), cwd=root)
    return proc, json.loads(out.read_text()) if out.is_file() else None


def test_cpu_smoke_runs_every_check_and_passes(smoke):
    import gpu_check_runs

    proc, report = smoke
    assert report is not None, proc.stderr[-3000:]
    assert list(report["checks"]) == list(gpu_check_runs.CHECKS)
    failed = {n: r.get("error") for n, r in report["checks"].items() if r["status"] != "passed"}
    assert not failed and proc.returncode == 0, (failed, proc.stdout[-2000:])
    for name, record in report["checks"].items():
        assert record["seconds"] > 0 and record["device"] == "cpu", name
        assert record["memory"]["measured_skipped"] == "no CUDA", name
    assert set(report["versions"]) >= {"torch", "megatron-core", "transformer-engine", "mamba-ssm", "causal-conv1d"}
    assert "pretrain_nano3" in proc.stdout and "passed" in proc.stdout.splitlines()[-1]


def test_packed_sft_matches_unpacked_within_tolerance(smoke):
    _, report = smoke
    for name in ("sft_gpt", "sft_nano3"):
        packed = report["checks"][name]["packed_vs_unpacked"]
        assert packed["samples"] > packed["rows"]  # rows hold several samples
        assert packed["max_abs_diff"] <= packed["tolerance"] < packed["control_max_abs_diff"], name
    assert report["checks"]["sft_nano3"]["mamba_mixer"] == "TorchMamba2Mixer"


def test_training_checks_record_the_estimate_losses_and_stack(smoke):
    _, report = smoke
    for name, record in report["checks"].items():
        if name.startswith("hf_"):
            assert record["verify"]["passed"] and "estimate_skipped" in record["memory"], name
            continue
        assert record["memory"]["estimate_gib"] > 0 and record["layer_spec"] == "local", name
        assert record["tokens_per_s"] > 0 and "loss_first" in record and "loss_last" in record, name
    assert report["checks"]["pretrain_gpt"]["mfu_skipped"] == "no CUDA"
    assert report["checks"]["rl_nano3"]["generation_tokens_per_s"] > 0


def test_a_check_in_its_own_process_reports_back(tmp_path):
    out = tmp_path / "one.json"
    proc = _run("--cpu-smoke", "--checks", "hf_llama", "--json", str(out), cwd=tmp_path)
    record = json.loads(out.read_text())["checks"]["hf_llama"]
    assert proc.returncode == 0 and record["status"] == "passed", (record, proc.stderr[-2000:])


def test_without_cuda_it_refuses_in_one_line(tmp_path):
    proc = _run("--json", str(tmp_path / "x.json"), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: no CUDA device: this check needs a GPU (--cpu-smoke runs it on the CPU)"
    ]
    assert not (tmp_path / "x.json").exists()
