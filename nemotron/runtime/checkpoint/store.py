"""Save and resume training state with Megatron-Core `dist_checkpointing` (the `checkpoint` config).

A checkpoint holds the model's and the optimizer's sharded state dicts (Megatron reshards them on
load, so a TP=2 checkpoint loads into TP=1), the LR scheduler, every rank's RNG states and the data
position. `checkpoint.dir` looks like:

    iter_0000010/                 complete: torch_dist files, common.pt, metadata.json and
        nemotron_checkpoint.json  <- our marker: step, data position, layout, file sizes, run id
    iter_0000020.tmp-9f3a1c2e/    a save in progress, or one a crash interrupted: never loaded

Atomic and durable: all ranks write into `iter_N.tmp-<random>`; after every rank has finished
(barrier), rank 0 fsyncs every file and folder in it, writes the marker (with each file's size;
temp file, fsync, rename), renames the folder to `iter_N` and fsyncs `checkpoint.dir`. Resume takes
the highest `iter_N` whose marker is readable and whose files all have the recorded sizes; a newer
one that fails this (no marker, a truncated file) is skipped with a `CheckpointWarning`
(`checkpoint_index`). A checkpoint that does not fit the run is named before loading (`checkpoint_fit`).

Timeouts: every save and load runs in a daemon thread that the caller waits on for at most
`checkpoint.timeout_s`. Past it, `CheckpointTimeoutError` is raised in the training thread and the
run fails through its normal path (summary line, tracker closed FAILED, process groups torn down);
the stuck thread cannot be killed and stays blocked, but as a daemon it does not keep the process
alive, and its half-written `.tmp-` folder is never picked up. Under torchrun the other ranks hit
their own timeout (or torchrun stops them when this rank exits).

Tracker seam: a save records the tracker's `run_id` attribute when it has one; resuming from this
run's own `checkpoint.dir`, `run(cfg)` opens the tracker with `tracker_config(cfg, found)`, which
carries it as `cfg.tracker.resume_run_id` so the tracker continues that run (the MLflow tracker
does). `latest_run_id(dir)` reads it without loading anything.

`checkpoint.dir` must be a file system every rank sees (as Megatron's dist_checkpointing needs).
"""

from __future__ import annotations

import contextlib
import copy
import queue
import random
import secrets
import shutil
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import numpy as np
import torch
import torch.distributed as dist

from nemotron.common.atomic_files import fsync_dir, fsync_tree, write_json_atomic
from nemotron.runtime import cpu_compat
from nemotron.runtime.checkpoint import fit as checkpoint_fit
from nemotron.runtime.peft import state as adapter_state
from nemotron.common.checkpoint_index import (
    FORMAT, MARKER, CheckpointError, CheckpointTimeoutError, CheckpointWarning, Found, checkpoint_files,
    complete_checkpoints, iter_dir, latest, latest_run_id,
)

__all__ = [
    "CheckpointError", "CheckpointTimeoutError", "CheckpointWarning", "Found", "Position", "MARKER",
    "complete_checkpoints", "find_resume", "latest", "latest_run_id", "load", "save", "tracker_config",
]

_OPTIMIZER_FORMAT = {"distrib_optim_sharding_type": "dp_reshardable",
                     "chained_optim_avoid_prefix": True}
"""Megatron-LM's default format for the distributed optimizer: written in parallel without
gathering, reshards to another data-parallel size only (Megatron's `fully_reshardable` fails with
torch's Adam, i.e. without Apex/TE). The plain optimizer's state reshards like the model's."""
_TORCH_DCP_NOISE = r".*(`load_state_dict` is deprecated|Please use DTensor instead)"


@dataclass
class Position:
    """How far training got: what a resumed run starts from."""

    step: int = 0
    consumed_train_samples: int = 0
    consumed_valid_samples: int = 0


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _say(text: str) -> None:
    if _rank() == 0:
        print(text, flush=True)


def _broadcast(obj: Any) -> Any:
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def find_resume(cfg: Any) -> Optional[Found]:
    """The checkpoint this run starts from: the latest in `checkpoint.dir` (when `resume`), else the
    latest in `checkpoint.load_dir`; None for a fresh start. Rank 0 decides for all ranks."""
    ck = cfg.checkpoint

    def pick() -> Optional[Found]:
        found = None
        if _rank() == 0:
            found = latest(ck.dir) if ck.resume else None
            if found is None and ck.load_dir:
                found = latest(ck.load_dir) or CheckpointError(
                    f"checkpoint.load_dir={ck.load_dir} holds no complete checkpoint "
                    f"(folders named iter_NNNNNNN with a {MARKER})")
        found = _broadcast(found)
        if isinstance(found, CheckpointError):
            raise found
        return found

    return bounded(pick, ck.timeout_s, "looking for a checkpoint")


def tracker_config(cfg: Any, found: Optional[Found]) -> Any:
    """`cfg` with `tracker.resume_run_id` set when resuming this run's own checkpoint (not one from
    `checkpoint.load_dir`, which starts a new tracked run) and it recorded a run id."""
    from omegaconf import DictConfig, open_dict

    own_dir = Path(cfg.checkpoint.dir).resolve()
    own = found is not None and Path(found.path).parent.resolve() == own_dir
    if not own or found.run_id is None or not isinstance(cfg, DictConfig):
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.tracker.resume_run_id = found.run_id
    return cfg


# ---- timeouts ------------------------------------------------------------------------------------


def bounded(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """fn() in a daemon thread; its result, its exception, or CheckpointTimeoutError after
    `timeout_s` seconds (the thread is then abandoned: see the module docstring)."""
    box: Dict[str, Any] = {}
    device = torch.cuda.current_device() if torch.cuda.is_available() else None
    threads = torch.get_num_threads()

    def target() -> None:
        try:
            torch.set_num_threads(threads)  # OpenMP's thread count and the CUDA device are per
            if device is not None:          # thread: the caller's, not the defaults
                torch.cuda.set_device(device)
            box["result"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            box["error"] = err

    thread = threading.Thread(target=target, name=f"checkpoint: {what}", daemon=True)
    thread.start()
    thread.join(timeout_s if timeout_s and timeout_s > 0 else None)
    if thread.is_alive():
        raise CheckpointTimeoutError(
            f"{what} did not finish within checkpoint.timeout_s={timeout_s} s; a hung writer or "
            "reader (e.g. dist_checkpointing without psutil, a stalled file system, a rank that "
            "died) now fails the run instead of blocking it. Raise checkpoint.timeout_s if the "
            "storage is just slow.")
    if "error" in box:
        raise box["error"]
    return box.get("result")


# ---- what goes into a checkpoint -----------------------------------------------------------------


def _rng_state() -> Dict[str, Any]:
    from megatron.core import tensor_parallel

    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state(),
             "tracker": tensor_parallel.get_cuda_rng_tracker().get_states()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: Dict[str, Any]) -> None:
    from megatron.core import tensor_parallel

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    tensor_parallel.get_cuda_rng_tracker().set_states(state["tracker"])


def _rng_object(data: Any) -> Any:
    from megatron.core.dist_checkpointing.mapping import ShardedObject

    world = dist.get_world_size() if dist.is_initialized() else 1
    return ShardedObject("rng_state", data, (world,), (_rank(),), replica_id=0)


def state_dict(model: Any, optimizer: Any, scheduler: Any, position: Position,
               with_rng: bool = True, is_loading: bool = False) -> Dict[str, Any]:
    """The sharded state dict a checkpoint holds (also the template a load fills)."""
    from megatron.core.utils import unwrap_model

    model_sd = adapter_state.model_sharded_state_dict(unwrap_model(model))  # no DDP "module." prefix
    if is_loading:
        cpu_compat.allocate_adam_state(optimizer)
    with cpu_compat.cuda_as_cpu():  # the distributed optimizer gathers through .cuda() buffers
        optimizer_sd = optimizer.sharded_state_dict(model_sd, is_loading=is_loading,
                                                    metadata=_OPTIMIZER_FORMAT)
    sd = {"model": model_sd,
          "optimizer": optimizer_sd,
          "scheduler": scheduler.state_dict(),
          "position": vars(position).copy(),
          "format": FORMAT}
    if with_rng:
        sd["rng_state"] = _rng_object(None if is_loading else _rng_state())
    return sd


# ---- saving --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _in_process_results() -> Iterator[None]:
    # The torch_dist writer returns its results through a queue it creates on first use with a
    # *spawned* multiprocessing Manager (3-5 s, and the child re-imports __main__). A synchronous
    # save fills and reads that queue in this same process, so a plain queue does the job.
    try:
        from megatron.core.dist_checkpointing.strategies import filesystem_async as fa
    except ImportError:
        yield
        return
    if getattr(fa, "_results_queue", "absent") is not None:
        yield  # a queue exists already (or the attribute moved in another version): keep it
        return
    fa._results_queue = queue.Queue()
    try:
        yield
    finally:
        fa._results_queue = None


def _save_strategy() -> Any:
    """torch_dist; with data parallel ranks, spread the writes of replicated tensors over them."""
    from megatron.core import parallel_state
    from megatron.core.dist_checkpointing.serialization import get_default_save_sharded_strategy
    from megatron.core.dist_checkpointing.strategies.fully_parallel import (
        FullyParallelSaveStrategyWrapper)

    strategy = get_default_save_sharded_strategy()
    group = parallel_state.get_data_parallel_group(with_context_parallel=True)
    if dist.get_world_size(group) > 1:
        strategy = FullyParallelSaveStrategyWrapper(strategy, group)
    return strategy


def _write(sd: Dict[str, Any], root: str, step: int, meta: Dict[str, Any]) -> Path:
    """Write `sd` atomically as iter_<step> under `root`; the final path."""
    from megatron.core import dist_checkpointing

    final = iter_dir(root, step)
    tmp = _broadcast(final.with_name(f"{final.name}.tmp-{secrets.token_hex(4)}"))
    if _rank() == 0:
        tmp.mkdir(parents=True)
    if dist.is_initialized():
        dist.barrier()
    with _in_process_results():
        dist_checkpointing.save(sd, str(tmp), sharded_strategy=_save_strategy())  # + barrier
    if _rank() == 0:
        meta = {**meta, "files": checkpoint_files(tmp)}
        # every file and folder on disk before the marker says "complete": the torch_dist writers fsync
        # their own shards already (cheap to repeat); this catches common.pt, metadata.json and the folders
        fsync_tree(tmp)
        write_json_atomic(tmp / MARKER, meta)
        if final.exists():  # re-saving a step: swap the old copy out, then delete it
            old = final.with_name(f"{final.name}.old-{secrets.token_hex(4)}")
            final.rename(old)
            tmp.rename(final)
            fsync_dir(final.parent)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
            fsync_dir(final.parent)
    if dist.is_initialized():
        dist.barrier()
    return final


def write_weights(sd: Dict[str, Any], root: str, step: int, meta: Dict[str, Any]) -> Path:
    """Write a weights-only state dict (an imported model) as a complete iter_<step> folder that
    `checkpoint.pretrained` loads; all ranks call this."""
    meta = {"format": FORMAT, "step": step, "position": vars(Position(step=step)).copy(),
            "run_id": None, "time": time.time(), **meta}
    return _write(sd, root, step, meta)


def _prune(root: str, keep_last: int, current: Path) -> None:
    """Delete complete checkpoints older than the newest `keep_last`, and leftover temp folders."""
    for path in Path(root).iterdir():
        if ".tmp-" in path.name or ".old-" in path.name:
            shutil.rmtree(path, ignore_errors=True)
    if keep_last > 0:
        done = complete_checkpoints(root)
        for _, path in done[:-keep_last]:
            if path != current:
                shutil.rmtree(path, ignore_errors=True)


def save(cfg: Any, model: Any, optimizer: Any, scheduler: Any, position: Position,
         tracker: Any = None) -> Path:
    """Save a complete checkpoint of step `position.step` into `checkpoint.dir` (all ranks call
    this); prints `checkpoint saved: ...` on rank 0 and prunes to `checkpoint.keep_last`."""
    ck, start = cfg.checkpoint, time.perf_counter()
    meta = {"format": FORMAT, "step": position.step, "position": vars(position).copy(),
            "layout": checkpoint_fit.layout(cfg), "run_id": getattr(tracker, "run_id", None),
            "time": time.time(), **adapter_state.checkpoint_meta(model)}

    def work() -> Path:
        sd = state_dict(model, optimizer, scheduler, position)
        path = _write(sd, ck.dir, position.step, meta)
        if _rank() == 0:
            _prune(ck.dir, ck.keep_last, path)
        return path

    path = bounded(work, ck.timeout_s, f"saving checkpoint step {position.step} to {ck.dir}")
    if _rank() == 0:
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        _say(f"checkpoint saved: {path} (step {position.step}, {size / 1e6:.1f} MB, "
             f"{time.perf_counter() - start:.2f} s)")
    return path


# ---- loading -------------------------------------------------------------------------------------


def load(found: Found, cfg: Any, model: Any, optimizer: Any, scheduler: Any) -> Position:
    """Restore model, optimizer, scheduler and (same layout only) RNG states from `found` (all ranks
    call this); the data position to continue from. Prints `resumed from ...` on rank 0."""
    from megatron.core import dist_checkpointing
    from megatron.core.utils import unwrap_model

    same_layout = found.meta.get("layout") == checkpoint_fit.layout(cfg)

    def work() -> Position:
        sd = state_dict(model, optimizer, scheduler, Position(), with_rng=same_layout,
                        is_loading=True)
        checkpoint_fit.check_fits(sd, found, cfg)
        try:
            with warnings.catch_warnings():  # torch.distributed.checkpoint deprecations, per load
                warnings.filterwarnings("ignore", _TORCH_DCP_NOISE, FutureWarning)
                loaded = dist_checkpointing.load(sd, found.path)
        except Exception as err:  # noqa: BLE001 - re-raised with the checkpoint and layouts named
            raise CheckpointError(f"loading checkpoint {found.path} failed: "
                                  f"{str(err).strip().splitlines()[0][:500]}. "
                                  f"{checkpoint_fit.why(found, cfg, '', None)}") from err
        adapter_state.load_model_state(unwrap_model(model), loaded["model"])
        with cpu_compat.cuda_as_cpu(), torch.no_grad():  # fp32 main params are model params on CPU
            optimizer.load_state_dict(loaded["optimizer"])
        cpu_compat.restore_adam_steps(optimizer)
        scheduler.override_opt_param_scheduler = True  # the config's schedule wins, step is kept
        scheduler.load_state_dict(loaded["scheduler"])
        if same_layout:
            _set_rng_state(loaded["rng_state"])
        return Position(**loaded["position"])

    position = bounded(work, cfg.checkpoint.timeout_s, f"loading checkpoint {found.path}")
    if not same_layout:
        _say(f"checkpoint {found.path}: saved with {checkpoint_fit.layout_text(found.meta.get('layout', {}))}, "
             f"loaded into {checkpoint_fit.layout_text(checkpoint_fit.layout(cfg))}; RNG states start fresh")
    _say(f"resumed from {found.path} at step {position.step}")
    return position


def load_weights(found: Found, cfg: Any, model: Any, say: bool = True) -> None:
    """Model weights only from `found` (a pretrained checkpoint), before the optimizer exists: a
    fine-tuning start with a fresh optimizer and schedule. A tensor that does not fit is named.
    `say=False` skips the line saying so (a frozen reference model's weights)."""
    from megatron.core import dist_checkpointing
    from megatron.core.utils import unwrap_model

    def work() -> None:
        sd = {"model": unwrap_model(model).sharded_state_dict()}
        checkpoint_fit.check_fits(sd, found, cfg)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _TORCH_DCP_NOISE, FutureWarning)
            loaded = dist_checkpointing.load(sd, found.path)
        unwrap_model(model).load_state_dict(loaded["model"])

    bounded(work, cfg.checkpoint.timeout_s, f"loading pretrained weights {found.path}")
    if say:
        _say(f"initialised from pretrained weights {found.path} (step {found.step}); "
             "optimizer and schedule start fresh")
