"""MLflow side of a pipeline (`python -m nemotron.tracking.pipeline open|close`; imports mlflow).

Started by the launch side (nemotron/pipe/tracking.py) as a subprocess, so the launch layer never
imports mlflow:

- `open`: creates the parent run (tag `nemotron.pipeline`) and prints its id; every stage's run
  nests under it through $NEMOTRON_MLFLOW_PARENT_RUN_ID.
- `close --summary tracking.json`: for each stage, its own run (the id in `<stage_dir>/tracking/
  mlflow_run_id`) or, for a stage that tracks nothing itself (data prep), a nested run made here;
  on it the consumed artifacts as run inputs (MLflow datasets named `<artifact>@<version>`) and the
  produced ones as `nemotron.output.<name>` tags; on the parent `pipeline.json`, a PNG of the graph
  (each stage's state and final loss or reward), params per stage, and its end status.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from nemotron.tracking.params import to_tags, truncate
from nemotron.tracking.registry import ArtifactNotFound, Registry
from nemotron.tracking.store import connect, experiment_id

FINAL_METRICS = ("reward", "loss")
"""The metric shown per stage in the graph, first found."""
COLORS = {
    "done": "#8fd18f",
    "skipped": "#c8e6c8",
    "failed": "#f19c9c",
    "interrupted": "#f5d08a",
    "running": "#9cc3f1",
    "not run": "#dddddd",
}


def open_parent(uri: str, experiment: str, name: str) -> str:
    client = connect(uri)
    run = client.create_run(
        experiment_id(client, uri, experiment),
        run_name=f"pipeline: {name}",
        tags=to_tags({"nemotron.pipeline": name, "nemotron.pipeline.role": "parent"}),
    )
    return run.info.run_id


def stage_run(client: Any, parent: str, stage: Dict[str, Any]) -> str:
    """The stage's own MLflow run, or a nested one created for it."""
    path = Path(stage["stage_dir"]) / "tracking" / "mlflow_run_id"
    if path.is_file():
        return path.read_text().strip()
    exp = client.get_run(parent).info.experiment_id
    run = client.create_run(
        exp,
        run_name=f"{stage['stage']} ({stage['recipe']})",
        tags=to_tags({"mlflow.parentRunId": parent, "nemotron.recipe": stage["recipe"]}),
    )
    status = {"done": "FINISHED", "skipped": "FINISHED", "failed": "FAILED"}.get(stage["state"], "KILLED")
    client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


def log_lineage(client: Any, run_id: str, stage: Dict[str, Any], registry: Registry) -> None:
    """Consumed artifacts as run inputs, produced ones as tags (from the stage's record)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    record = stage.get("record") or {}
    entries = []
    for ref in record.get("input_refs", []):
        try:
            entries.append(registry.get(ref))
        except ArtifactNotFound:
            continue
    datasets = [
        DatasetInput(
            Dataset(
                name=f"{e['name']}@{e['version']}",
                digest=e["hash"].split(":")[-1][:36],
                source_type="local",
                source=json.dumps({"uri": e["path"]}),
                profile=json.dumps({"kind": e["kind"]}),
            ),
            tags=[InputTag("mlflow.data.context", e["kind"])],
        )
        for e in entries
    ]
    if datasets:
        client.log_inputs(run_id, datasets=datasets)
    outputs = record.get("outputs", {})
    tags = {
        "nemotron.pipeline.stage": stage["stage"],
        **{f"nemotron.output.{n}": f"{o['ref']} {o['path']} {o['hash']}" for n, o in outputs.items()},
    }
    for key, value in to_tags(tags).items():
        client.set_tag(run_id, key, value)


def final_metric(client: Any, run_id: str) -> Optional[str]:
    metrics = client.get_run(run_id).data.metrics
    for name in FINAL_METRICS:
        if name in metrics:
            return f"{name} {metrics[name]:.3f}"
    return None


def graph_png(stages: List[Dict[str, Any]], out: Path, title: str) -> Path:
    """Stages as boxes left to right (their state's colour, final metric), arrows producer -> consumer."""
    from nemotron.tracking.plots import load_pyplot

    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 2.4 * len(stages)), 3), dpi=100)
    x = {s["stage"]: i * 2.4 for i, s in enumerate(stages)}
    for stage in stages:
        here = x[stage["stage"]]
        for up in stage["upstream"]:
            bend = -0.4 if here - x[up] > 2.5 else 0.0  # a longer edge arcs over the stages between
            ax.annotate(
                "",
                xy=(here - 0.6, 0),
                xytext=(x[up] + 0.6, 0),
                arrowprops={"arrowstyle": "->", "connectionstyle": f"arc3,rad={bend}"},
            )
        metric = f"\n{stage['metric']}" if stage.get("metric") else ""
        ax.text(
            here,
            0,
            f"{stage['stage']}\n{stage['recipe']}\n{stage['state']}{metric}",
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round", "pad": 0.6, "facecolor": COLORS.get(stage["state"], "#dddddd")},
        )
    ax.set_xlim(-1.3, x[stages[-1]["stage"]] + 1.3)
    ax.set_ylim(-0.8, 1.4)
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def close_parent(uri: str, run_id: str, summary_path: Path, registry: Registry) -> None:
    client = connect(uri)
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    stages = summary["stages"]
    for stage in stages:
        try:
            child = stage_run(client, run_id, stage)
            log_lineage(client, child, stage, registry)
            stage["run_id"], stage["metric"] = child, final_metric(client, child)
        except Exception as exc:  # noqa: BLE001 - one stage's tracking never hides the others'
            print(f"tracker: stage {stage['stage']}: {type(exc).__name__}: {exc}", file=sys.stderr)
        client.log_param(run_id, f"stage.{stage['stage']}", truncate(f"{stage['recipe']} {stage['state']}", 500))
    png = graph_png(stages, summary_path.with_name("pipeline_graph.png"), f"pipeline {summary['pipeline']}")
    client.log_artifact(run_id, str(png))
    client.log_text(run_id, json.dumps(summary, indent=1, default=str), "pipeline.json")
    failed = any(s["state"] in ("failed", "interrupted") for s in stages)
    client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nemotron.tracking.pipeline")
    p.add_argument("command", choices=["open", "close"])
    p.add_argument("--uri", required=True)
    p.add_argument("--experiment", default="pipeline")
    p.add_argument("--name", default="pipeline")
    p.add_argument("--run-id")
    p.add_argument("--summary", type=Path)
    p.add_argument("--registry", default="outputs/artifacts.json")
    args = p.parse_args(argv)
    if args.command == "open":
        print(open_parent(args.uri, args.experiment, args.name))
        return 0
    close_parent(args.uri, args.run_id, args.summary, Registry(args.registry))
    return 0


if __name__ == "__main__":
    from nemotron.common.shutdown import exit_quickly

    exit_quickly(main())
