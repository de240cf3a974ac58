"""nemotron.runtime.cpu_compat: idempotent install, and each patched CUDA assumption works on CPU."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from nemotron.runtime import cpu_compat
from nemotron.runtime.train import distributed

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU patches are off with CUDA")


@pytest.fixture
def megatron_world():
    """World size 1 with TP=PP=1, torn down afterwards."""
    parallel = SimpleNamespace(tensor_model_parallel_size=1, pipeline_model_parallel_size=1,
                               context_parallel_size=1, expert_model_parallel_size=1,
                               data_parallel_size=None)
    yield distributed.init(SimpleNamespace(parallel=parallel))
    distributed.teardown()


def test_install_is_idempotent_and_reports_each_patch_once():
    first = cpu_compat.install()
    second = cpu_compat.install()

    assert first == second == cpu_compat.installed()
    assert len(set(first)) == len(first)
    assert "torch.cuda.current_device->cpu" in first


def test_cuda_queries_megatron_makes_work_after_install():
    cpu_compat.install()

    assert torch.cuda.current_device() == "cpu"
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.current_stream().wait_stream(None)


def test_schedules_count_tokens_on_cpu():
    cpu_compat.install()
    from megatron.core.pipeline_parallel import schedules

    counter = schedules.torch.zeros([], dtype=torch.int, device="cuda")
    assert counter.device.type == "cpu"
    assert schedules.torch.no_grad is torch.no_grad  # everything else is plain torch


def test_cuda_as_cpu_maps_devices_only_inside_the_block():
    with cpu_compat.cuda_as_cpu():
        inside = torch.zeros(2, device="cuda")
        assert inside.device.type == "cpu"
        assert inside.cuda() is inside
        assert inside.type() == "torch.cuda.FloatTensor"
    assert inside.type() == "torch.FloatTensor"
    with pytest.raises((AssertionError, RuntimeError)):
        torch.zeros(2, device="cuda")


def test_rng_tracker_fork_restores_the_outer_state(megatron_world):
    from megatron.core.tensor_parallel import get_cuda_rng_tracker

    cpu_compat.seed_model_parallel(1234)
    tracker = get_cuda_rng_tracker()
    assert isinstance(tracker, cpu_compat.CpuRNGStatesTracker)

    outer = torch.get_rng_state()
    with tracker.fork():
        first = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), outer)
    with tracker.fork():
        second = torch.rand(3)
    assert not torch.equal(first, second)  # the forked stream advances between forks
    expected_next = torch.rand(3)
    torch.set_rng_state(outer)
    assert torch.equal(torch.rand(3), expected_next)  # forks never consumed the outer stream


def test_nested_forks_resume_the_outer_named_stream(megatron_world):
    from megatron.core.tensor_parallel import get_cuda_rng_tracker
    from megatron.core.tensor_parallel.random import _EXPERT_PARALLEL_RNG_TRACKER_NAME as EXPERT

    cpu_compat.seed_model_parallel(7)
    tracker = get_cuda_rng_tracker()
    with tracker.fork():
        a = torch.rand(2)
        with tracker.fork(EXPERT):
            torch.rand(5)
        b = torch.rand(2)

    cpu_compat.seed_model_parallel(7)
    with get_cuda_rng_tracker().fork():
        assert torch.equal(torch.rand(2), a)
        assert torch.equal(torch.rand(2), b)


def test_rng_tracker_seeds_are_reproducible_and_distinct(megatron_world):
    from megatron.core.tensor_parallel import get_cuda_rng_tracker

    draws = []
    for seed in (1, 1, 2):
        cpu_compat.seed_model_parallel(seed)
        with get_cuda_rng_tracker().fork():
            draws.append(torch.rand(4))
    assert torch.equal(draws[0], draws[1])
    assert not torch.equal(draws[0], draws[2])


JIT_PROBE = """
import sys, torch
real_compile = torch.compile
from nemotron.runtime import cpu_compat
from megatron.core import jit
from megatron.core.fusions import fused_bias_gelu
cpu_compat.install()
def f(x):
    return x + 1
print(jit.jit_fuser(f) is f, torch.compile is real_compile, 'torch._inductor.compile_fx' in sys.modules)
doubled = torch.compile(lambda x: x * 2)
print(float(doubled(torch.ones(1))), torch._dynamo.config.disable)
"""


def test_megatron_helpers_are_plain_functions_and_torch_compile_runs_eagerly_on_cpu():
    """Megatron's jit_fuser decorates its helpers without loading dynamo or inductor (1.5 s of every
    start); torch.compile itself is the real one again and, as before, runs eagerly on CPU."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", JIT_PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True", "False", "2.0", "True"]


def test_setting_the_groups_up_again_and_tearing_down_leaves_no_process_group_threads(tmp_path):
    import os

    from runtime_support import resolved_run_config

    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    cfg = resolved_run_config(["+recipe=nano3/pretrain", "tracker=none"], run_dir=tmp_path / "run")
    distributed.init(cfg)
    once = threads()
    for _ in range(3):  # as a tool building models one after another does (no teardown in between)
        distributed.init(cfg)
    assert threads() <= once + 2  # the old groups' threads went with them
    distributed.teardown()
    after = threads()
    assert after < once - 20  # Megatron's groups (gloo: a few threads each) are gone
    distributed.init(cfg)
    distributed.teardown()
    assert threads() <= after + 1  # nothing gathers from one set-up to the next


def test_a_finished_in_process_run_leaves_nothing_megatron_keeps_alive(tmp_path):
    """After a training run in this process and a garbage collection, no process group survives: Megatron's
    `destroy_model_parallel` leaves the intra-partial DP groups in its globals and RoPE's cached forward
    keeps the old modules and their CP group, each holding gloo threads and the TCPStore (measured: 4 more
    threads per run without `destroy_model_parallel_groups` dropping them)."""
    import gc
    import os

    from runtime_support import resolved_run_config

    from nemotron.runtime.stages import pretrain

    counts = []
    for i in range(2):
        cfg = resolved_run_config(
            ["+recipe=gpt/pretrain", "tracker=none", "train.num_threads=1", "train.steps=1",
             "checkpoint.save_at_end=false", f"data.cache_dir={tmp_path / 'data'}"],
            run_dir=tmp_path / f"run{i}",
        )  # fmt: skip
        pretrain.run(cfg)
        gc.collect()  # the model's reference cycles hold its groups until a collection
        counts.append(len(os.listdir("/proc/self/task")))
    assert counts[1] <= counts[0], counts
