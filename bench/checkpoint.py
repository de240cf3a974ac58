"""Checkpoint cost: our save/load (`nemotron.runtime.checkpoint.store`) against a bare
`dist_checkpointing.save/load` of the same state.

    python bench/checkpoint.py [--repeats 5] [--hidden-size 1024] [--num-layers 6]

Builds a GPT of ~70M parameters (fp32, CPU, one rank, one torch thread) through the recipe's own
setup and trains one step so Adam has state. Then, alternating, after one untimed warm-up round:
- save: ours is `checkpoint.save` (temp folder, RNG objects, marker, rename, watchdog thread);
  bare is `dist_checkpointing.save` of the identical sharded state dict into an empty folder;
- load: ours is `checkpoint.load` (shape check, RNG, scheduler); bare builds the sharded state
  dict, calls `dist_checkpointing.load` and puts the result into the model and the optimizer.
Checkpoints are deleted between repeats, outside the timings. Prints the median seconds and
throughput of each, and last the median over rounds of ours / bare within a round (target: within
10%, i.e. <= 1.10). On a shared machine other processes' I/O moves single timings by +-50%.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo: Hydra finds hydra_plugins/


def _config(args: argparse.Namespace, root: Path):
    from omegaconf import OmegaConf

    from nemotron.config.compose import compose_run

    overrides = ["+recipe=gpt/pretrain", "tracker=none", "train.num_threads=1",
                 f"model.hidden_size={args.hidden_size}", f"model.num_layers={args.num_layers}",
                 f"model.ffn_hidden_size={args.hidden_size * 11 // 4}",
                 "model.num_attention_heads=16", "model.num_query_groups=4",
                 "model.seq_length=32", "train.micro_batch_size=1", "train.global_batch_size=1",
                 f"checkpoint.dir={root / 'ours'}", "checkpoint.keep_last=0"]
    cfg = compose_run(overrides, run_dir=root / "run")
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _bench(run, cfg, root: Path, repeats: int) -> dict:
    from megatron.core import dist_checkpointing

    from nemotron.runtime.checkpoint import store as checkpoint

    position = checkpoint.Position(step=1, consumed_train_samples=1)
    bare_dir, ours_dir = root / "bare", Path(cfg.checkpoint.dir)

    def ours_save() -> None:
        checkpoint.save(cfg, run.model, run.optimizer, run.scheduler, position)

    def bare_save() -> None:
        bare_dir.mkdir()
        sd = checkpoint.state_dict(run.model, run.optimizer, run.scheduler, position)
        dist_checkpointing.save(sd, str(bare_dir))

    def ours_load() -> None:
        checkpoint.load(checkpoint.latest(str(ours_dir)), cfg, run.model, run.optimizer,
                        run.scheduler)

    def bare_load() -> None:
        from megatron.core.utils import unwrap_model

        sd = checkpoint.state_dict(run.model, run.optimizer, run.scheduler, position,
                                   is_loading=True)
        loaded = dist_checkpointing.load(sd, str(bare_dir))
        unwrap_model(run.model).load_state_dict(loaded["model"])
        run.optimizer.load_state_dict(loaded["optimizer"])

    def clear() -> None:
        shutil.rmtree(bare_dir, ignore_errors=True)
        shutil.rmtree(ours_dir, ignore_errors=True)

    steps = {"ours save": ours_save, "bare save": bare_save,
             "ours load": ours_load, "bare load": bare_load}
    times: dict = {name: [] for name in steps}
    for rep in range(repeats + 1):  # the first round warms up and is not counted
        clear()
        # Alternate who goes first: the second writer of a round meets the first one's dirty pages.
        order = ["ours save", "bare save", "ours load", "bare load"]
        if rep % 2:
            order = ["bare save", "ours save", "bare load", "ours load"]
        for name in order:
            seconds = _timed(steps[name])
            if rep:
                times[name].append(seconds)
    size = sum(p.stat().st_size for p in bare_dir.rglob("*") if p.is_file())
    clear()
    # Ratios pair the two runs of one round, so load from other processes cancels more.
    ratios = {op: statistics.median(o / b for o, b in zip(times[f"ours {op}"], times[f"bare {op}"]))
              for op in ("save", "load")}
    return {"size": size, "ratio": ratios, **{k: statistics.median(v) for k, v in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden-size", type=int, default=1024)
    parser.add_argument("--num-layers", type=int, default=6)
    args = parser.parse_args()

    from nemotron.runtime.stages import pretrain

    from nemotron.runtime.train import step as train_step_module

    from nemotron.runtime.checkpoint.checkpointer import Checkpointer

    from nemotron.runtime.train.setup import setup
    from nemotron.runtime.train import distributed

    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as tmp:
        cfg = _config(args, Path(tmp))
        info = distributed.init(cfg)
        try:
            run = setup(cfg, info, pretrain.PretrainStage(), Checkpointer(cfg))
            train_step_module.train_step(run)  # Adam state exists after the first step
            params = sum(p.numel() for p in run.model.parameters())
            print(f"model: {params / 1e6:.1f}M parameters (fp32) + Adam state", flush=True)
            result = _bench(run, cfg, Path(tmp), args.repeats)
        finally:
            distributed.teardown()
    gb = result["size"] / 1e9
    print(f"checkpoint size: {gb:.2f} GB; medians of {args.repeats} after a warm-up:")
    for name in ("bare save", "ours save", "bare load", "ours load"):
        print(f"  {name}: {result[name]:.2f} s ({gb / result[name]:.2f} GB/s)")
    print(f"ratio ours / bare (median over rounds): save {result['ratio']['save']:.3f}, "
          f"load {result['ratio']['load']:.3f} (target <= 1.10)")


if __name__ == "__main__":  # the torch_dist writer's spawned helper re-imports __main__
    main()
