"""lm-evaluation-harness around our LM: the task index (local tasks included), one `simple_evaluate`,
and where its results go (JSON in the run directory, a table, tracker metrics `eval/<task>/<metric>`).

lm-eval runs offline here (HF_DATASETS_OFFLINE, HF_HUB_OFFLINE default to 1): a task whose data is not
in the local datasets cache fails with the dataset's name instead of downloading it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

from nemotron.common.eval_tasks import RESULTS_FILE, unknown_task_line


class EvalTaskError(ValueError):
    """A task lm-eval does not know, or whose data is not available offline (one line)."""


def task_manager(task_dir: Path, names: Optional[List[str]] = None) -> Any:
    """lm-eval's task index with the local tasks' folder included. When every one of `names` is a local
    task, the index of the local folder alone: indexing lm-eval's ~15,000 own task files costs ~7 s a
    process, which an evaluation on local tasks (the embedded default, pipelines) does not need."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lm_eval.tasks import TaskManager

    if names is not None:
        local = TaskManager(include_path=str(task_dir), include_defaults=False)
        if all(name in local.all_tasks for name in names):
            return local
    return TaskManager(include_path=str(task_dir))


def check_tasks(names: List[str], manager: Any) -> None:
    """Every name is a task or group lm-eval knows; else EvalTaskError with the closest names."""
    known = list(manager.all_tasks)
    for name in names:
        if name not in known:
            raise EvalTaskError(unknown_task_line(name, known))


def evaluate(lm: Any, cfg: Any, manager: Any) -> Dict[str, Any]:
    """lm-eval's results of `cfg.eval.tasks` on `lm`."""
    from lm_eval import simple_evaluate

    e = cfg.eval
    try:
        return simple_evaluate(
            model=lm,
            tasks=list(e.tasks),
            num_fewshot=e.num_fewshot,
            limit=e.limit,
            task_manager=manager,
            bootstrap_iters=int(e.bootstrap_iters),
            random_seed=int(e.seed),
            numpy_random_seed=int(e.seed),
            torch_random_seed=int(e.seed),
            fewshot_random_seed=int(e.seed),
            log_samples=False,
        )
    except (ConnectionError, FileNotFoundError) as err:  # offline: the hub or a local file is missing
        raise EvalTaskError(
            f"eval.tasks: a task's data is not available offline ({err}); "
            "put it in the datasets cache or use a task YAML over local files"
        ) from err


def metrics(results: Dict[str, Any]) -> Dict[str, float]:
    """`eval/<task>/<metric>` (filters other than `none` appended) for every number lm-eval reports."""
    out = {}
    for task, values in results["results"].items():
        for key, value in values.items():
            metric, _, filt = key.partition(",")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and filt:
                name = metric if filt == "none" else f"{metric}_{filt}"
                out[f"eval/{task}/{name}"] = float(value)
    return out


def table(results: Dict[str, Any]) -> str:
    """lm-eval's own markdown table of the results."""
    from lm_eval.utils import make_table

    return make_table(results)


def write_results(results: Dict[str, Any], run_dir: Path, checkpoint: Any = None) -> Path:
    """lm-eval's results (without per-sample logs) as JSON in the run directory, with the checkpoint
    evaluated (`nemotron.checkpoint`, `nemotron.step`: what a comparison of runs labels them by)."""
    path = Path(run_dir) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {k: v for k, v in results.items() if k != "samples"}
    if checkpoint is not None:
        kept["nemotron"] = {"checkpoint": str(checkpoint.path), "step": int(checkpoint.step)}
    path.write_text(json.dumps(kept, indent=1, default=str) + "\n")
    return path
