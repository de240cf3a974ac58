"""The end of a Slurm pipeline: one small job that runs after every stage job has ended.

`nemotron.pipe` submits it last, with `--dependency=afterany:<every stage job>` (so it runs whether
the chain completed, failed or was cancelled: one CPU, ten minutes). submitit runs `FinishTask`,
which carries what it needs as plain data (each stage's `records.facts`, its job id), and:

- asks sacct how each stage ended; a COMPLETED stage whose outputs are there gets its `stage.json`
  and registry entries (with lineage) now, not at the next `nemotron.pipe` command;
- writes the stage states into `pipeline.json`, when that still holds this submission;
- with MLflow tracking, closes the pipeline's parent run, which `nemotron.pipe` opened at submission
  and which every stage's run nests under: each stage's lineage, the graph PNG, the end status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from nemotron.pipe import records

FAILED_STATES = frozenset({"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED"})
"""Slurm end states of a stage that ran and did not finish."""
FINISH_TIME_MIN = 10
"""Time limit of the finishing job (it reads sacct, writes records, uploads a summary)."""


@dataclass
class FinishTask:
    """What the finishing job runs (submitit pickles it): plain data only, no config, no secrets."""

    pipeline: str
    pipeline_dir: str
    launch_id: str
    """The submission it belongs to (`pipeline.json` is updated only while it names this one)."""
    stages: List[Dict[str, Any]]
    """Every stage's records.facts, with `job_id` for those this submission sent."""
    tracking: Dict[str, str] = field(default_factory=dict)
    """uri, parent_run_id, registry: the parent MLflow run to close; empty when not tracked."""

    def __call__(self) -> int:
        return finish(self)


def stage_state(stage: Dict[str, Any], slurm: Optional[Any]) -> str:
    """done, failed, interrupted, not run or unknown, from the stage's record and its job's end."""
    if records.read_json(Path(stage["stage_dir"]) / records.STAGE_RECORD) and not stage.get("job_id"):
        return "skipped"  # finished before this submission
    if slurm is None:
        return "unknown"
    if slurm.state == "COMPLETED":
        return "failed" if records.missing_outputs(stage["outputs"]) else "done"
    if slurm.state in FAILED_STATES:
        return "failed"
    if slurm.state == "CANCELLED":
        return "not run" if slurm.elapsed in ("", "00:00:00") else "interrupted"
    return "unknown"


def settle_stages(task: FinishTask) -> List[Dict[str, Any]]:
    """Each stage with its state and record; records and registry entries written for COMPLETED ones."""
    from nemotron.launchers import scheduler

    ids = [str(s["job_id"]) for s in task.stages if s.get("job_id")]
    known = scheduler.known_states(ids)[0] if ids else {}
    done: Dict[str, Dict[str, Any]] = {}
    settled = []
    for stage in task.stages:
        state = stage_state(stage, known.get(str(stage.get("job_id", ""))))
        record = records.read_json(Path(stage["stage_dir"]) / records.STAGE_RECORD)
        if state == "done" and (record is None or record.get("config_hash") != stage["config_hash"]):
            record = records.record_facts(task.pipeline, stage, done, run_id=records.run_id_in(stage["stage_dir"]))
        if state in ("done", "skipped") and record:
            done[stage["stage"]] = record
        settled.append({**stage, "state": state, "record": record if state in ("done", "skipped") else None})
        if state == "not run":  # sacct's Reason for a job its dependency cancelled is not always set
            unfinished = [s["stage"] for s in settled if s["stage"] in stage["upstream"] and s["stage"] not in done]
            settled[-1]["why"] = f"never ran: {', '.join(unfinished) or 'a producer'} did not finish"
    return settled


def update_record(task: FinishTask, settled: List[Dict[str, Any]]) -> bool:
    """Write the end states into pipeline.json if it still holds this submission; whether it did."""
    path = Path(task.pipeline_dir) / records.PIPELINE_RECORD
    rec = records.read_json(path)
    if not rec or rec.get("launch_id") != task.launch_id:
        return False
    ended = {s["stage"]: s for s in settled}
    for stage in rec["stages"]:
        end = ended.get(stage["stage"], {})
        stage["state"] = end.get("state", stage.get("state"))
        stage.update({"why": end["why"]} if "why" in end else {})
    rec["finished"] = True
    records.write_json(path, rec)
    return True


def close_parent(task: FinishTask, settled: List[Dict[str, Any]]) -> None:
    """The parent MLflow run: stage lineage, graph, end status (through the tracking helper process)."""
    from nemotron.pipe import tracking

    summary = Path(task.pipeline_dir) / "tracking.json"
    entries = [tracking.summary_entry(s, s["state"], s["record"]) for s in settled]
    tracking.write_summary(summary, task.pipeline, entries)
    tracking.close_parent(task.tracking, summary)


def finish(task: FinishTask) -> int:
    """Settle every stage, update pipeline.json, close the parent run; 0, or 1 when a stage did not finish."""
    settled = settle_stages(task)
    update_record(task, settled)
    if task.tracking.get("parent_run_id"):
        close_parent(task, settled)
    from nemotron.pipe import scores

    table = scores.write(task.pipeline, settled, Path(task.pipeline_dir))
    if table:
        print(f"pipeline {task.pipeline}: eval scores\n{table}", flush=True)
    line = ", ".join(f"{s['stage']} {s['state']}" for s in settled)
    print(f"pipeline {task.pipeline}: {line}", flush=True)
    return 0 if all(s["state"] in ("done", "skipped") for s in settled) else 1


def executor_params(name: str, cfg: Any, code_dir: Optional[Path], job_ids: List[str], cwd: Path) -> Dict[str, Any]:
    """submitit parameters of the finishing job: one CPU task on the stages' partition, after all of them."""
    from nemotron.launchers.script import container_args

    c = cfg.cluster
    setup = list(c.setup)
    if code_dir is not None:  # the code the stages run, not whatever the checkout holds by then
        setup.append(f"export PYTHONPATH={code_dir}${{PYTHONPATH:+:$PYTHONPATH}} PYTHONSAFEPATH=1")
    return {
        "job_name": f"{name}/finish",
        "nodes": 1,
        "ntasks_per_node": 1,
        "cpus_per_task": 1,
        "partition": c.partition,
        "account": c.account,
        "qos": c.qos,
        "time": FINISH_TIME_MIN,
        "setup": setup,
        "srun_args": container_args(cfg, cwd),
        "additional_parameters": {"chdir": str(cwd), "dependency": f"afterany:{':'.join(job_ids)}"},
        "stderr_to_stdout": True,
        "wckey": "nemotron",
    }


def submit(task: FinishTask, cfg: Any, code_dir: Optional[Path], job_ids: List[str]) -> str:
    """Submit the finishing job through submitit; its job id."""
    from nemotron.launchers.script import rank_python
    from nemotron.launchers.submitit_compat import make_executor

    folder = Path(task.pipeline_dir) / "submitit"
    python = rank_python(cfg)  # the ranks' python: cluster.python, the image's, or this one
    executor = make_executor(folder, executor_params(task.pipeline, cfg, code_dir, job_ids, Path.cwd()), 0, python)
    return str(executor.submit(task).job_id)
