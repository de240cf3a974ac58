"""Every workaround that lets Megatron-Core train on a CPU-only torch build, in one place.

Megatron-Core assumes CUDA in a handful of spots (measured on 0.16.1, see
shared/notes/megatron-cpu.md). `install()` patches exactly those, and only when
`torch.cuda.is_available()` is false, so on a GPU machine it changes nothing. Each patch
names the assumption it removes. Separately, `install()` fills two holes that appear when
Transformer Engine is absent (a CPU box always; a GPU box only in a bare venv).

`SUPPORTED` is the range these patches were checked against (they reach into Megatron-Core's private
modules); `install()` refuses others, and pyproject.toml pins the same range
(tests/test_dependencies.py holds them equal).

Use:
    cpu_compat.install()                       # once, before building the model
    cpu_compat.seed_model_parallel(seed)       # instead of model_parallel_cuda_manual_seed
    with cpu_compat.cuda_as_cpu(): ...         # around model/optimizer construction, optimizer.step
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import types
import warnings
from typing import Any, Callable, Iterator, List, Optional

import torch
from torch.overrides import TorchFunctionMode

from nemotron.common import versions


@contextlib.contextmanager
def _plain_functions_for_jit_fuser() -> Iterator[None]:
    """While Megatron-Core is first imported on CPU, `torch.compile` returns the function it is given.

    megatron.core.jit binds `jit_fuser = torch.compile` at import, and a dozen modules decorate small
    helpers with it at import; each decoration loads torch._dynamo and inductor's compile_fx (~1.5 s
    of every training process's start, for functions that run eagerly on CPU anyway, see
    `_run_compiled_eagerly`). With this, Megatron's `jit_fuser` is a plain decorator for the process;
    `torch.compile` itself is put back at once. Does nothing if Megatron was imported already."""
    if "megatron.core.jit" in sys.modules or torch.cuda.is_available():
        yield
        return
    real = torch.compile

    def plain(model: Any = None, **_: Any) -> Any:
        return model if model is not None else (lambda fn: fn)

    torch.compile = plain
    try:
        yield
    finally:
        torch.compile = real


if not torch.cuda.is_available():
    # Expected without a GPU, repeated by half a dozen megatron modules at import: silenced before it.
    warnings.filterwarnings("ignore", message=r".*(Transformer Engine|Apex).*not installed", category=UserWarning)

with _plain_functions_for_jit_fuser():
    from megatron.core.tensor_parallel import random as mpu_random  # noqa: E402

_INSTALLED: List[str] = []
"""Names of the patches applied so far (install() is idempotent)."""


def on_cpu() -> bool:
    """True when this process has no CUDA device (the CPU workarounds apply)."""
    return not torch.cuda.is_available()


@functools.lru_cache(maxsize=None)
def te_available() -> bool:
    """True when Transformer Engine imports (a CPU box fails even with the package installed)."""
    try:
        importlib.import_module("transformer_engine.pytorch")
    except Exception:  # noqa: BLE001 - ImportError, or a CUDA/linker error from a broken build
        return False
    return True


def _is_cuda(device: Any) -> bool:
    """True for "cuda", "cuda:N" and CUDA torch.device objects."""
    return isinstance(device, (str, torch.device)) and str(device).startswith("cuda")


SUPPORTED = {"megatron-core": ">=0.16.1,<0.20"}
"""The releases the patches were written for: 0.16.1 (tested here, newest on Python 3.11) to 0.19 (NGC, 3.12)."""


def megatron_version() -> Optional[str]:
    """Megatron-Core's version (its package_info, so a source checkout on PYTHONPATH counts too)."""
    try:
        from megatron.core import package_info
    except ImportError:
        return versions.installed("megatron-core")
    return str(package_info.__version__)


def check_versions() -> None:
    """Refuse a Megatron-Core release these patches were not written for (one line)."""
    found = {"megatron-core": version} if (version := megatron_version()) else None
    if refused := versions.refusal(SUPPORTED, "nemotron/runtime/cpu_compat.py", found):
        raise ImportError(refused)


def installed() -> List[str]:
    """Names of the patches applied in this process."""
    return list(_INSTALLED)


def install() -> List[str]:
    """Apply the CPU patches (no-op with CUDA) and the no-TE fallbacks; safe to call repeatedly."""
    if not _INSTALLED:
        check_versions()
    if on_cpu():
        _patch_once("torch.compile->eager", _run_compiled_eagerly)
        _patch_once("torch.cuda.current_device->cpu", _patch_current_device)
        _patch_once("torch.cuda.synchronize/empty_cache->no-op", _patch_sync)
        _patch_once("torch.cuda.current_stream->dummy", _patch_stream)
        _patch_once("schedules: device='cuda' factories->cpu", _patch_schedules)
        _patch_once("recompute: CUDA RNG state save/restore->no-op", _patch_checkpoint_rng)
    if not te_available():
        _patch_once("moe_utils.te_general_gemm=None", _patch_moe_te_gemm)
        _patch_once("hybrid stack TENorm->WrappedTorchNorm", _patch_hybrid_final_norm)
    return installed()


def _patch_once(name: str, patch: Callable[[], bool]) -> None:
    if name not in _INSTALLED and patch() is not False:
        _INSTALLED.append(name)


def _run_compiled_eagerly() -> None:
    # megatron.core.jit.jit_fuser is torch.compile (written with GPUs in mind), applied to small
    # helpers such as squared_relu and the MoE router. On CPU, inductor spends ~8 s compiling C++
    # on the first step (needs a compiler; ~1 s with a warm cache) to fuse ops of a millisecond
    # step: run compiled functions eagerly. Dynamo reads this flag on every call, so it works
    # after megatron has been imported. Megatron's own helpers are plain functions already
    # (`_plain_functions_for_jit_fuser`); dynamo (~0.6 s to import) is loaded here only if something
    # loaded it before, else its config reads TORCH_COMPILE_DISABLE when it is first imported.
    if "torch._dynamo" in sys.modules:
        sys.modules["torch._dynamo"].config.disable = True
    else:
        os.environ["TORCH_COMPILE_DISABLE"] = "1"


def _patch_current_device() -> None:
    # RoPE (rotary_pos_embedding.get_emb), DDP grad buffers (param_and_grad_buffer) and the
    # pipeline p2p buffers place tensors on `torch.cuda.current_device()`, which raises without
    # CUDA.
    torch.cuda.current_device = lambda: "cpu"  # type: ignore[assignment]


def _patch_sync() -> None:
    # Timers, the optimizer and dist_checkpointing call torch.cuda.synchronize()/empty_cache().
    torch.cuda.synchronize = lambda *a, **k: None  # type: ignore[assignment]
    torch.cuda.empty_cache = lambda *a, **k: None  # type: ignore[assignment]


class _DummyStream:
    """Stands in for a CUDA stream: every wait is already satisfied on CPU."""

    def wait_event(self, *args: Any, **kwargs: Any) -> None:
        pass

    def wait_stream(self, *args: Any, **kwargs: Any) -> None:
        pass

    def synchronize(self) -> None:
        pass


def _patch_stream() -> None:
    # 0.19: param_and_grad_buffer.start_grad_sync waits on torch.cuda.current_stream()
    # unconditionally.
    torch.cuda.current_stream = lambda *a, **k: _DummyStream()  # type: ignore[assignment]


class _TorchOnCpu(types.ModuleType):
    """`torch` as one Megatron module sees it: all attributes delegate to torch, except that the
    tensor factories below turn device='cuda' into 'cpu'. Cheaper than a TorchFunctionMode, which
    would intercept every op of the forward and backward pass (~9% of a tiny model's step)."""

    def __init__(self) -> None:
        super().__init__("torch")

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)


def _cpu_factory(factory: Callable) -> Callable:
    def make(*args: Any, **kwargs: Any) -> torch.Tensor:
        if _is_cuda(kwargs.get("device")):
            kwargs["device"] = "cpu"
        return factory(*args, **kwargs)

    return make


for _name in ("zeros", "ones", "empty", "full", "tensor", "arange"):
    setattr(_TorchOnCpu, _name, staticmethod(_cpu_factory(getattr(torch, _name))))


def _patch_schedules() -> bool:
    # forward_backward_no_pipelining and the pipelined schedules count tokens in
    # torch.zeros([], dtype=torch.int, device="cuda").
    try:
        schedules = importlib.import_module("megatron.core.pipeline_parallel.schedules")
    except ImportError:
        return False
    schedules.torch = _TorchOnCpu()
    return True


def _patch_checkpoint_rng() -> None:
    # Activation recomputation (tensor_parallel.checkpoint) saves the CUDA RNG state before the
    # forward and restores it around the recomputed one. The CPU RNG state and the tracker's named
    # states, which CPU runs draw from, are saved and restored by the same code untouched.
    mpu_random._get_cuda_rng_state = lambda *args, **kwargs: None
    mpu_random._set_cuda_rng_state = lambda *args, **kwargs: None


def _patch_moe_te_gemm() -> bool:
    # 0.16.1: moe_utils defines te_general_gemm only inside `try: import transformer_engine`,
    # then the router tests `te_general_gemm is not None` -> NameError without TE.
    try:
        moe_utils = importlib.import_module("megatron.core.transformer.moe.moe_utils")
    except ImportError:
        return False
    if not hasattr(moe_utils, "te_general_gemm"):
        moe_utils.te_general_gemm = None
    return True


def _patch_hybrid_final_norm() -> bool:
    # MambaStack (0.16) / HybridStack (0.19) build their final norm with TENorm unconditionally.
    from megatron.core.transformer.torch_norm import WrappedTorchNorm

    patched = False
    for name in ("megatron.core.ssm.mamba_block", "megatron.core.models.hybrid.hybrid_block"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "TENorm"):
            module.TENorm = WrappedTorchNorm
            patched = True
    return patched


# ---- RNG: model_parallel_cuda_manual_seed needs torch.cuda RNG states ----------------------------


def seed_model_parallel(seed: int) -> None:
    """Seed the default RNG and Megatron's RNG tracker (model_parallel_cuda_manual_seed on CUDA)."""
    torch.manual_seed(seed)
    if not on_cpu():
        mpu_random.model_parallel_cuda_manual_seed(seed)
        return
    _install_cpu_rng_tracker(seed)


def _install_cpu_rng_tracker(seed: int) -> None:
    # CudaRNGStatesTracker.add/fork call torch.cuda.get_rng_state/manual_seed; attention forks the
    # tracker even with dropout 0. Same tracker names and seed layout as upstream, on the CPU RNG.
    from megatron.core import parallel_state as ps

    tracker = CpuRNGStatesTracker()
    mpu_random._CUDA_RNG_STATE_TRACKER = tracker
    mpu_random._CUDA_RNG_STATE_TRACKER_INITIALIZED = True
    tp_rank = ps.get_tensor_model_parallel_rank()
    ep_rank = ps.get_expert_model_parallel_rank()
    etp_rank = ps.get_expert_tensor_parallel_rank()
    data_name = getattr(mpu_random, "_DATA_PARALLEL_RNG_TRACKER_NAME", None)
    if data_name is not None:
        tracker.add(data_name, seed)
    tracker.add(mpu_random._MODEL_PARALLEL_RNG_TRACKER_NAME, seed + 2718 + tp_rank)
    expert_seed = seed + 1024 + 100 * ep_rank + etp_rank
    tracker.add(mpu_random._EXPERT_PARALLEL_RNG_TRACKER_NAME, expert_seed)
    _patch_once("CpuRNGStatesTracker", lambda: None)


class CpuRNGStatesTracker(mpu_random.CudaRNGStatesTracker):
    """Megatron's RNG tracker with named states kept for the CPU generator instead of CUDA's."""

    def add(self, name: str, seed: int) -> None:
        """Track a new named RNG state seeded with `seed` (the default state is left untouched)."""
        self._is_initialized = True
        if seed in self.seeds_ or name in self.states_:
            raise ValueError(f"seed {seed} already exists" if seed in self.seeds_ else f"rng state {name} exists")
        self.seeds_.add(seed)
        outer = torch.get_rng_state()
        torch.manual_seed(seed)
        self.states_[name] = torch.get_rng_state()
        torch.set_rng_state(outer)

    @contextlib.contextmanager
    def fork(self, name: str = mpu_random._MODEL_PARALLEL_RNG_TRACKER_NAME) -> Iterator[None]:
        """Run the block on the named state; the outer state (named or default) resumes after."""
        if name not in self.states_:
            raise KeyError(f"rng state {name} is not added")
        outer_name = self._current_state_name
        outer = torch.get_rng_state()
        if outer_name in self.states_:  # nested fork: remember how far the outer named state got
            self.states_[outer_name] = outer
        torch.set_rng_state(self.states_[name])
        self._current_state_name = name
        try:
            yield
        finally:
            self.states_[name] = torch.get_rng_state()
            torch.set_rng_state(self.states_.get(outer_name, outer))
            self._current_state_name = outer_name


# ---- one-off calls that allocate on "cuda" or assert CUDA tensor types ---------------------------


class CudaToCpuMode(TorchFunctionMode):
    """Inside the `with` block: device='cuda' becomes 'cpu', `Tensor.cuda()` is a no-op and
    `Tensor.type()` reports 'torch.cuda.*' (what Megatron's optimizer and clip_grads assert on)."""

    def __torch_function__(self, func, arg_types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if _is_cuda(kwargs.get("device")):
            kwargs = {**kwargs, "device": "cpu"}
        if func is torch.Tensor.to:
            args = tuple("cpu" if _is_cuda(a) else a for a in args)
        if func is torch.Tensor.cuda:
            return args[0]
        if func is torch.Tensor.type and len(args) == 1 and not kwargs:
            name = func(*args)
            return name if name.startswith("torch.cuda.") else name.replace("torch.", "torch.cuda.", 1)
        return func(*args, **kwargs)


def cuda_as_cpu() -> contextlib.AbstractContextManager:
    """CudaToCpuMode on CPU, a nullcontext on CUDA. Wrap, and only wrap (it sees every torch call):
    - model construction: with pipeline parallelism, tied embeddings are synchronised through
      `weight.data.cuda()` (LanguageModule.setup_embeddings_and_output_layer);
    - get_megatron_optimizer() and optimizer.step(): FP32Optimizer allocates on 'cuda' and
      clip_grads asserts grads are 'torch.cuda.FloatTensor'."""
    return CudaToCpuMode() if on_cpu() else contextlib.nullcontext()


# ---- torch's Adam inside Megatron's DistributedOptimizer (no Apex/TE): checkpoint loads ---------------


def _torch_adams(optimizer: Any) -> Iterator[Any]:
    """The torch.optim optimizers inside Megatron DistributedOptimizers when Apex/TE is absent."""
    from megatron.core.optimizer import distrib_optimizer as dopt

    if getattr(dopt, "HAVE_APEX_OR_TE", True):
        return
    for opt in getattr(optimizer, "chained_optimizers", [optimizer]):
        if isinstance(opt, dopt.DistributedOptimizer) and getattr(opt, "optimizer", None):
            yield opt.optimizer


def allocate_adam_state(optimizer: Any) -> None:
    # Without Apex/TE, DistributedOptimizer.state_dict() asserts each param has an Adam `step`, so a load
    # template cannot be built before the first step: allocate zero state (the load overwrites it).
    for inner in _torch_adams(optimizer):
        for param in (p for group in inner.param_groups for p in group["params"]):
            if not inner.state[param]:
                zeros = torch.zeros_like
                inner.state[param] = {"step": torch.tensor(0.0), "exp_avg": zeros(param), "exp_avg_sq": zeros(param)}


def restore_adam_steps(optimizer: Any) -> None:
    # ...and its load_state_dict() leaves each param's `step` at the template's (the saved one is in the
    # param groups), one tensor shared by all params: give each its own tensor holding the saved step.
    for inner in _torch_adams(optimizer):
        for group in inner.param_groups:
            if "step" in group:
                for param in group["params"]:
                    inner.state[param]["step"] = torch.tensor(float(group["step"]))


def destroy_model_parallel_groups() -> None:
    """Megatron's `destroy_model_parallel()` forgets its groups without destroying them and leaves the
    intra-partial DP groups set; RoPE's `lru_cache`d forward keeps old modules and their CP group. Each kept
    gloo threads and a TCPStore alive (thousands in a test session): destroy, then drop every reference."""
    import torch.distributed as dist
    from megatron.core import parallel_state
    from megatron.core.models.common.embeddings import rotary_pos_embedding as rope

    groups = [g for g in getattr(parallel_state, "_global_process_group_list", None) or [] if g is not None]
    parallel_state.destroy_model_parallel()
    for group in groups if dist.is_initialized() else []:
        with contextlib.suppress(ValueError, RuntimeError):  # gone with an earlier default group
            dist.destroy_process_group(group)
    for name in [k for k, v in vars(parallel_state).items() if isinstance(v, dist.ProcessGroup)]:
        setattr(parallel_state, name, None)
    getattr(rope.RotaryEmbedding.forward, "cache_clear", lambda: None)()  # a plain method elsewhere
