"""The eval stage: `checkpoint.pretrained` benchmarked on `eval.tasks` with lm-evaluation-harness.

Not a training loop: set up the process groups (tensor and data parallel: lm-eval splits the
documents over the data-parallel replicas, see `lm.MegatronLM`), take the run's tokenizer
(data.tokenizer_path or the embedded tiny data's), build the model and load the weights, generate the
local tasks if missing, then one `simple_evaluate` with our model as the LM (`lm.MegatronLM`).
Rank 0 writes lm-eval's results JSON to the run directory, prints its table and logs
`eval/<task>/<metric>` to the tracker at the checkpoint's step; the run's lineage (registry and
MLflow: nemotron.tracking.lineage) is the checkpoint folder it evaluated -> `eval/<recipe>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import torch

from nemotron.runtime import cpu_compat
from nemotron.runtime.data import rl as rl_data
from nemotron.runtime.eval import harness, tasks
from nemotron.runtime.eval.lm import DataParallel, LMSettings, MegatronLM
from nemotron.runtime.model import inference_compat
from nemotron.runtime.model.build import build_model
from nemotron.runtime.prep import chat
from nemotron.runtime.stages.pretrained import load_pretrained, pretrained_source, with_pretrained_path
from nemotron.runtime.train import distributed, setup
from nemotron.runtime.train.progress import say


def chat_prompt(cfg: Any, tokenizer: Any) -> tuple:
    """(render(question) -> the chat prompt GRPO would sample from, the template's source text)."""
    source, origin = chat.template_source(cfg.data.chat_template, tokenizer.path)
    tokens = chat.template_tokens(tokenizer.path, cfg.data.eod_token)
    renderer = chat.ChatRenderer(source, cfg.data.eod_token, origin, tokens)

    def render(question: str) -> str:
        return rl_data.prompt_text(renderer, [{"role": "user", "content": question}], "eval prompt")

    return render, source


def build_lm(cfg: Any, tokenizer: Any) -> tuple:
    """(our LM over the weights `checkpoint.pretrained` names, that checkpoint or None)."""
    setup.set_seed(cfg.train.seed)
    source = pretrained_source(cfg)
    model, _ = build_model(cfg, tokenizer.vocab_size)
    load_pretrained(cfg, model, source, "eval")
    model.eval()
    inference_compat.fast_inference(model)  # SDPA attention, plain linears: eval only
    settings = LMSettings(
        max_length=int(cfg.model.seq_length),
        batch_size=int(cfg.eval.batch_size),
        max_gen_toks=int(cfg.eval.max_gen_toks),
        eos_text=str(cfg.data.eod_token),
        seed=int(cfg.eval.seed),
    )
    device = None if cpu_compat.on_cpu() else torch.device("cuda", torch.cuda.current_device())
    return MegatronLM(model, tokenizer, settings, device, data_parallel()), source


def data_parallel() -> DataParallel:
    """This rank's replica among Megatron's data-parallel group (one replica without a process group)."""
    import torch.distributed as dist
    from megatron.core import parallel_state

    if not dist.is_initialized() or not parallel_state.model_parallel_is_initialized():
        return DataParallel()
    group = parallel_state.get_data_parallel_group()
    return DataParallel(dist.get_rank(group), dist.get_world_size(group), group)


def report(cfg: Any, results: Dict[str, Any], source: Any) -> Path:
    """Results JSON in the run directory, the table on the terminal, metrics to the tracker at the
    checkpoint's step (`source`: the checkpoint evaluated, None for random weights)."""
    from nemotron.tracking import open_tracker

    step = source.step if source is not None else 0
    path = harness.write_results(results, Path(str(cfg.run_dir)), source)
    print(harness.table(results), flush=True)
    tracker = open_tracker(cfg, 0)
    try:
        tracker.log(step, harness.metrics(results))
    finally:
        tracker.close()
    say(f"eval results: {path}")
    return path


def evaluate(cfg: Any, info: distributed.DistInfo) -> Dict[str, Any]:
    """Build, evaluate and (rank 0) report; lm-eval's results."""
    torch.set_num_threads(setup.num_threads(cfg, info))
    tokenizer = rl_data.rl_tokenizer(cfg)
    render, template = chat_prompt(cfg, tokenizer)
    if info.rank == 0:
        tasks.prepare_tasks(cfg, render, template)
    distributed.barrier()
    task_dir = tasks.prepare_tasks(cfg, render, template)  # written by rank 0: only found here
    manager = harness.task_manager(task_dir, list(cfg.eval.tasks))
    harness.check_tasks(list(cfg.eval.tasks), manager)
    lm, source = build_lm(cfg, tokenizer)
    results = harness.evaluate(lm, cfg, manager)
    if _tensor_parallel_rank() == 0:
        replica = f" data-parallel replica {lm.dp.rank}/{lm.dp.size}" if lm.dp.size > 1 else ""
        print(f"eval:{replica} scored {lm.requests_scored} requests", flush=True)
    if info.rank == 0:
        report(cfg, results, source)
    return results


def _tensor_parallel_rank() -> int:
    from megatron.core import parallel_state

    return parallel_state.get_tensor_model_parallel_rank()


def run(cfg: Any) -> Dict[str, Any]:
    """Evaluate `cfg.checkpoint.pretrained` on `cfg.eval.tasks`; lm-eval's results (rank 0's)."""
    cpu_compat.install()
    cfg = with_pretrained_path(cfg)  # the folder evaluated, as the tracker records it (lineage input)
    info = distributed.init(cfg)
    try:
        return evaluate(cfg, info)
    finally:
        distributed.teardown()
