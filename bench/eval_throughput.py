"""Evaluation requests/s: our lm-eval LM (MegatronLM on the checkpoint) against lm-eval's own `hf`
backend on the same weights exported with export-hf, same tasks, batch size and threads.

    python bench/eval_throughput.py [--limit 40] [--batch-size 8] [--rounds 3]

Trains the tiny gpt pretraining recipe for 2 steps (a checkpoint), exports it, then for each kind of
request separately (loglikelihood: the multiple-choice task `nemotron_topic_choice`; generation: the
arithmetic task `nemotron_arithmetic`) builds lm-eval's requests once and times each LM answering
them, `--rounds` alternating pairs, one thread each. Prints requests/s of both and, last, the ratio
ours / hf for each kind (target >= 1.0 on CPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "runtime"))

KINDS = {"loglikelihood": "nemotron_topic_choice", "generate_until": "nemotron_arithmetic"}


def requests_of(manager: Any, task: str, limit: int) -> List[Any]:
    """lm-eval's requests of `task` (its first `limit` documents), as simple_evaluate builds them."""
    from lm_eval.tasks import get_task_dict

    (obj,) = get_task_dict([task], manager).values()
    obj.build_all_requests(limit=limit, rank=0, world_size=1)
    return list(obj.instances)


def timed(answer: Callable[[List[Any]], Any], requests: List[Any]) -> float:
    start = time.perf_counter()
    answer(requests)
    return len(requests) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch
    from omegaconf import OmegaConf
    from runtime_support import resolved_run_config

    from nemotron.hf.exporter import export_hf
    from nemotron.runtime.data import rl as rl_data
    from nemotron.runtime.eval import harness, stage, tasks
    from nemotron.runtime.stages.registry import stage_runner
    from nemotron.runtime.train import distributed

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        base = ["train.num_threads=1", "tracker=none", f"data.cache_dir={tmp}/data"]
        cfg = resolved_run_config(["+recipe=gpt/pretrain", *base, "train.steps=2", "train.eval_interval=0",
                                   "checkpoint.save_interval=2"], Path(tmp) / "run")  # fmt: skip
        stage_runner("pretrain")(cfg)
        OmegaConf.save(cfg, f"{cfg.run_dir}/config.yaml")
        ckpt = f"{cfg.run_dir}/checkpoints"
        export_hf(ckpt, f"{tmp}/hf", registry=f"{tmp}/artifacts.json")
        eval_cfg = resolved_run_config(["+recipe=gpt/eval", *base, f"checkpoint.pretrained={ckpt}",
                                        f"eval.batch_size={args.batch_size}"], Path(tmp) / "eval")  # fmt: skip
        distributed.init(eval_cfg)
        tokenizer = rl_data.rl_tokenizer(eval_cfg)
        render, template = stage.chat_prompt(eval_cfg, tokenizer)
        manager = harness.task_manager(tasks.prepare_tasks(eval_cfg, render, template), list(KINDS.values()))
        ours, _ = stage.build_lm(eval_cfg, tokenizer)
        from lm_eval.models.huggingface import HFLM

        hf = HFLM(pretrained=f"{tmp}/hf", batch_size=args.batch_size, device="cpu")
        results: Dict[str, Dict[str, float]] = {}
        for kind, task in KINDS.items():
            requests = requests_of(manager, task, args.limit)
            mine, theirs = [], []
            for _ in range(args.rounds):
                mine.append(timed(getattr(ours, kind), requests))
                theirs.append(timed(getattr(hf, kind), requests))
            results[kind] = {"requests": len(requests), "ours": statistics.median(mine),
                             "hf": statistics.median(theirs)}  # fmt: skip
        distributed.teardown()
    for kind, r in results.items():
        print(f"{kind:<15} {r['requests']:>4} requests  ours {r['ours']:8.1f}/s  hf {r['hf']:8.1f}/s")
    for kind, r in results.items():
        print(f"ratio {kind}: {r['ours'] / r['hf']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
