"""The estimate's weights, gradients and optimizer state equal what Megatron-Core allocates.

Each layout trains one step of a tiny model under torch.distributed.run with real gloo ranks
(tests/runtime/measure_rank_memory.py); every rank reports its parameter count, the sizes of its
DistributedDataParallel grad (and, distributed optimizer, param) buffers and its Adam state. The
estimate for that rank's pipeline stage must match exactly; the distributed optimizer's state,
sharded unevenly at tensor boundaries, must sum over the data-parallel group to the full state
and stay within the estimate's shard on every rank.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from runtime_support import resolved_run_config, tiny_data_dir  # noqa: F401 - fixture

from nemotron.memory.estimate import buffer_elements, dense_buffer, expert_dp
from nemotron.memory.layout import layout_from_config
from nemotron.memory.params import stage_params

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
LAYOUTS = {
    "gpt_world_1": (1, ["+recipe=gpt/pretrain"]),
    "gpt_tp2": (2, ["+recipe=gpt/pretrain", "parallel.tensor_model_parallel_size=2"]),
    "gpt_pp2_tied_distopt": (
        2,
        ["+recipe=gpt/pretrain", "parallel.pipeline_model_parallel_size=2", "parallel.use_distributed_optimizer=true"],
    ),
    "gpt_dp2_distopt": (2, ["+recipe=gpt/pretrain", "parallel.use_distributed_optimizer=true"]),
    "nano3_ep2_distopt": (
        2,
        ["+recipe=nano3/pretrain", "parallel.expert_model_parallel_size=2", "parallel.use_distributed_optimizer=true"],
    ),
    "nano3_pp2": (2, ["+recipe=nano3/pretrain", "parallel.pipeline_model_parallel_size=2"]),
}


def measure(tmp_path: Path, data_dir: Path, ranks: int, overrides: list) -> tuple:
    cfg = resolved_run_config(
        [
            *overrides,
            f"resources.procs_per_node={ranks}",
            "tracker=none",
            "train.num_threads=1",
            "train.steps=1",
            f"data.cache_dir={data_dir}",
        ],
        run_dir=tmp_path / "run",
    )
    config = tmp_path / "config.yaml"
    config.write_text(OmegaConf.to_yaml(cfg))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={ranks}",
        str(HERE / "measure_rank_memory.py"),
        str(config),
        str(tmp_path),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("rank*.json"))]
    assert len(records) == ranks
    return layout_from_config(cfg), records


@pytest.mark.parametrize("name", LAYOUTS)
def test_weights_gradients_and_optimizer_state_match_megatron(name, tmp_path, tiny_data_dir):  # noqa: F811
    ranks, overrides = LAYOUTS[name]
    x, records = measure(tmp_path, tiny_data_dir, ranks, overrides)
    for r in records:
        p = stage_params(x, r["stage"])
        buffer = dense_buffer(x, p) + buffer_elements(p.expert, expert_dp(x), x.distributed_optimizer)
        assert r["params"] == p.count, (r, p.count)
        assert r["param_bytes"] == 4 * p.count
        assert r["grad_buffer"] == buffer
        assert r["param_buffer"] == (buffer if x.distributed_optimizer else 0)
        if not x.distributed_optimizer:
            assert r["optimizer_state"] == 2 * p.count
            continue
        shard = dense_buffer(x, p) // (x.dp * x.cp) + buffer_elements(p.expert, expert_dp(x), True) // expert_dp(x)
        assert r["optimizer_state"] <= 2 * shard
    if x.distributed_optimizer:
        for stage in range(x.pp):
            group = [r for r in records if r["stage"] == stage and r["tp_rank"] == 0]
            p = stage_params(x, stage)
            expected = 2 * (sum(p.dense) + sum(p.expert) * x.dp // expert_dp(x))
            assert sum(r["optimizer_state"] for r in group) == expected
