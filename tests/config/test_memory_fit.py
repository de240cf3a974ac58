"""The pre-flight memory check: real sizes pinned, one-line refusals, the suggested fix really fits.

The estimate's parts are checked against Megatron-Core itself in tests/runtime/test_memory_*.py;
these tests are about the compose-time check (no torch) and the shipped full-size models.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from nemotron.config.validate import ConfigError, validate
from nemotron.memory import estimate_config, fit_problem, table
from nemotron.memory.estimate import GIB

NANO3_REFERENCE = [
    "+recipe=nano3/pretrain",
    "model=nano3",
    "cluster=dgx",
    "resources.nodes=4",
    "parallel.tensor_model_parallel_size=4",
    "parallel.expert_model_parallel_size=8",
    "parallel.sequence_parallel=true",
    "train.micro_batch_size=1",
    "tracker=none",
]
GPT_8B = ["+recipe=gpt/pretrain", "model=gpt_8b", "cluster=dgx", "train.micro_batch_size=1", "tracker=none"]


def tp(n: int) -> list:
    return [f"parallel.tensor_model_parallel_size={n}"] + (["parallel.sequence_parallel=true"] if n > 1 else [])


# (overrides, GiB per GPU of the worst rank, fits 80 GB H100 with 5% headroom)
REAL_SIZES = {
    "nano3 TP4 EP8 SP seq 8192": (NANO3_REFERENCE, 40.76, True),
    "gpt_8b TP1": (GPT_8B + tp(1), 207.32, False),
    "gpt_8b TP2": (GPT_8B + tp(2), 104.66, False),
    "gpt_8b TP4": (GPT_8B + tp(4), 53.33, True),
}


@pytest.mark.parametrize("name", REAL_SIZES)
def test_real_sizes_are_pinned(name, compose):
    overrides, gib, fits = REAL_SIZES[name]
    cfg = compose([*overrides, "preflight.memory=off"])
    est = estimate_config(cfg)
    print(f"{name}: {est.total / GIB:.2f} GiB per GPU\n{table(cfg, est)}")
    assert est.total / GIB == pytest.approx(gib, abs=0.01)
    cfg.preflight.memory = "check"
    assert (fit_problem(cfg) is None) == fits


def test_gpt_8b_on_one_dgx_node_is_refused_with_the_worst_rank_the_estimate_the_limit_and_a_fix(compose):
    cfg = compose(GPT_8B + tp(2))
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    (line,) = str(err.value).splitlines()
    assert "pipeline stage 0 needs ~104.7 GiB per GPU" in line and "76.0 GiB usable" in line
    assert "cheapest change that fits: parallel.use_distributed_optimizer=true" in line


@pytest.mark.parametrize("layout", [tp(1), tp(2)], ids=["tp1", "tp2"])
def test_the_suggested_change_fits_when_applied(layout, compose):
    problem = fit_problem(compose(GPT_8B + layout))
    change = problem.split("cheapest change that fits: ")[1].split(" (")[0].split()
    assert fit_problem(compose(GPT_8B + layout + change)) is None


def test_recompute_and_micro_batch_lower_the_estimate(compose):
    base = estimate_config(compose(GPT_8B + tp(4) + ["train.micro_batch_size=2"])).parts["activations"]
    smaller = estimate_config(compose(GPT_8B + tp(4))).parts["activations"]
    full = estimate_config(compose(GPT_8B + tp(4) + ["train.recompute=full"])).parts["activations"]
    assert base == pytest.approx(2 * smaller) and full < smaller / 4


def test_distributed_optimizer_shards_the_state_over_data_parallel(compose):
    plain = estimate_config(compose(GPT_8B + tp(4))).parts["optimizer"]
    sharded = estimate_config(compose(GPT_8B + tp(4) + ["parallel.use_distributed_optimizer=true"]))
    assert sharded.parts["optimizer"] == pytest.approx(plain / 2, rel=1e-3)  # DP = 8 / TP4 = 2


def test_warn_and_off_let_the_run_through(compose):
    assert fit_problem(compose(GPT_8B + ["preflight.memory=warn"])) is None
    validate(compose(GPT_8B + ["preflight.memory=off"]))


def test_a_layout_that_does_not_divide_the_model_gets_the_layout_error_not_an_estimate(compose):
    with pytest.raises(ConfigError) as err:
        validate(compose(GPT_8B + ["parallel.tensor_model_parallel_size=3"]))
    assert "memory:" not in str(err.value) and "tensor_model_parallel_size=3" in str(err.value)


def test_headroom_outside_0_1_is_refused(compose):
    with pytest.raises(ConfigError, match=r"preflight.memory_headroom=1.5: out of range, must be in \[0, 1\)"):
        validate(compose(["+recipe=gpt/pretrain", "preflight.memory_headroom=1.5", "tracker=none"]))


def test_dry_run_shows_the_table_and_a_cluster_without_a_gpu_figure_says_so(cli):
    result = cli(
        "+recipe=gpt/pretrain",
        "model=gpt_8b",
        "cluster=slurm",
        "cluster.transformer_engine=true",  # the figure below counts TE's fused attention
        "train.micro_batch_size=1",
        "tracker=none",
        "dry_run=true",
    )
    assert result.returncode == 0, result.stderr
    assert "note: memory check skipped: cluster=slurm has no cluster.gpu_memory_gb" in result.stderr
    assert "# memory per rank" in result.stdout and "207.32 GiB" in result.stdout


def test_the_refusal_is_one_line_and_nothing_is_written(cli, tmp_path):
    result = cli(*GPT_8B, "dry_run=false")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: memory: ")
    written = {p.name for p in (tmp_path / "outputs").rglob("*") if ".hydra" not in p.parts}
    assert not written & {"config.yaml", "train.log", "job.sbatch"}  # Hydra's own .hydra/ aside


def test_the_estimate_imports_no_torch():
    code = (
        "import sys, nemotron.memory; "
        "bad = [m for m in ('torch', 'megatron', 'mlflow') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_pair_of_changes_to_one_key_is_one_override_with_the_final_value(compose):
    """Only TP x 4 fits (distributed optimizer, full recompute and micro batch 1 are set already): the
    pair found is TP doubled twice, suggested as tensor_model_parallel_size=4 once, not =2 then =4."""
    from nemotron.memory.estimate import estimate
    from nemotron.memory.fit import cheapest_fix, scaled_layout
    from nemotron.memory.layout import layout_from_config

    cfg = compose(GPT_8B + ["train.recompute=full", "parallel.use_distributed_optimizer=true"])
    x = layout_from_config(cfg)
    limit = estimate(scaled_layout(scaled_layout(x, tp=2), tp=2)).total
    change, _ = cheapest_fix(x, limit, gpus_per_node=8)
    assert change == "parallel.tensor_model_parallel_size=4 parallel.sequence_parallel=true"
