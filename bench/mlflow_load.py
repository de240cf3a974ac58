"""MLflow under load: many runs tracking at once into one real tracking server, nothing lost.

    python bench/mlflow_load.py [--writers 64] [--seconds 60] [--rate 20] [--json mlflow_load.json]

Starts a real MLflow server (tests/mlflow_support.py: sqlite store on 127.0.0.1, one worker, as the
suite's) and `--writers` writer processes at once. Each is what a training run's rank 0 is to the
tracker: the project's own `MlflowTracker` (nemotron/tracking), which appends each step's metrics to
the run's `tracking/metrics.jsonl` and leaves the uploads to its companion uploader process
(`python -m nemotron.tracking.uploader`, batched `log_batch` every `tracker.flush_interval_s`). A
writer logs `--rate` steps a second of four metrics for `--seconds`, then closes the run FINISHED. At
the end every run's metric history is read back from the server: each logged point must be there, with
its value. Prints and writes (JSON) the writers, points logged, kept in the runs' local buffers
(`metrics.jsonl`: what `python -m nemotron.tracking sync` uploads later when a run's close timed out)
and found on the server, runs FINISHED, and the metrics/s the server held (points found / seconds from
the first writer's start to the last writer's exit) against the rate offered.

Two processes per writer (the writer and its uploader): 64 writers are 128 processes, which on a small
machine measure the machine as much as the server; the figure is what this machine held.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

REPO = Path(__file__).resolve().parents[1]
METRICS = ("loss", "lr", "grad_norm", "tokens_per_s")


def value(metric: str, writer: int, step: int) -> float:
    """The value writer `writer` logs for `metric` at `step` (checked when read back)."""
    return round(1.0 / (1 + step) + writer * 1e-3 + METRICS.index(metric), 6)


def writer_config(uri: str, run_dir: Path, writer: int) -> Any:
    """A resolved run config whose tracker is MLflow at `uri` (the tiny pretraining recipe's)."""
    from omegaconf import OmegaConf

    from nemotron.config.compose import compose_run

    cfg = compose_run(
        [
            "+recipe=gpt/pretrain",
            "tracker=mlflow",
            f"tracker.uri={uri}",
            f"tracker.experiment={root_name(run_dir)}",
            f"tracker.run_name=writer-{writer}",
            "tracker.flush_interval_s=2",
            "tracker.close_timeout_s=300",
            f"paths.output_root={run_dir.parent}",
            "tracker.log_artifacts=false",
        ],  # fmt: skip
        run_dir=run_dir,
    )
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def root_name(run_dir: Path) -> str:
    """The experiment of one load run: named after its root folder (one experiment per run)."""
    return f"load-{run_dir.parent.parent.name}"


def write(uri: str, run_dir: Path, writer: int, seconds: float, rate: float) -> int:
    """One writer: log `rate` steps a second for `seconds`, close FINISHED; the steps logged."""
    from nemotron.tracking import open_tracker

    tracker = open_tracker(writer_config(uri, run_dir, writer))
    step, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        tracker.log(step, {m: value(m, writer, step) for m in METRICS})
        step += 1
        time.sleep(max(0.0, start + step / rate - time.perf_counter()))
    tracker.close("FINISHED")
    (run_dir / "logged.json").write_text(json.dumps({"steps": step}))
    return step


def read_back(uri: str, root: Path, writers: int) -> Dict[str, Any]:
    """Every writer's run on the server: points found and wrong, runs FINISHED."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(root_name(root / "w0"))
    runs = {r.data.tags.get("mlflow.runName"): r for r in client.search_runs([exp.experiment_id], max_results=1000)}
    logged = found = wrong = finished = buffered = 0
    for w in range(writers):
        steps = json.loads((root / f"w{w}" / "logged.json").read_text())["steps"]
        logged += steps * len(METRICS)
        buffered += len((root / f"w{w}" / "tracking" / "metrics.jsonl").read_text().splitlines()) * len(METRICS)
        run = runs.get(f"writer-{w}")
        if run is None:
            continue
        finished += run.info.status == "FINISHED"
        for metric in METRICS:
            points = client.get_metric_history(run.info.run_id, metric)
            found += len(points)
            wrong += sum(abs(p.value - value(metric, w, p.step)) > 1e-9 for p in points)
    return {"points_logged": logged, "points_buffered": buffered, "points_found": found, "points_wrong": wrong,
            "runs_finished": finished}  # fmt: skip


def run_load(uri: str, root: Path, writers: int, seconds: float, rate: float) -> Dict[str, Any]:
    """All writers at once (subprocesses of this script); the read-back and the figures."""
    start = time.perf_counter()
    procs: List[subprocess.Popen] = []
    for w in range(writers):
        argv = [sys.executable, __file__, "--writer", str(w), "--uri", uri, "--root", str(root),
                "--seconds", str(seconds), "--rate", str(rate)]  # fmt: skip
        procs.append(subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    failed = [p.communicate()[1][-500:] for p in procs if p.wait() != 0 or False]
    wall = time.perf_counter() - start
    result = {"writers": writers, "seconds": seconds, "rate": rate, "wall_s": round(wall, 1),
              "writers_failed": len(failed), **read_back(uri, root, writers)}  # fmt: skip
    result["metrics_per_s"] = round(result["points_found"] / wall, 1)
    result["offered_per_s"] = round(writers * rate * len(METRICS), 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0, help="steps a second each writer logs")
    parser.add_argument("--json", default="mlflow_load.json")
    parser.add_argument("--writer", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer is not None:
        write(args.uri, Path(args.root) / f"w{args.writer}", args.writer, args.seconds, args.rate)
        return 0
    sys.path.insert(0, str(REPO / "tests"))
    from mlflow_support import MlflowServer

    with tempfile.TemporaryDirectory() as tmp:
        server = MlflowServer(Path(tmp))
        server.start()
        try:
            result = run_load(server.uri, Path(tmp) / "runs", args.writers, args.seconds, args.rate)
        finally:
            server.stop()
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    lost = result["points_logged"] - result["points_found"]
    return 0 if lost == 0 and not result["points_wrong"] and result["runs_finished"] == args.writers else 1


if __name__ == "__main__":
    sys.exit(main())
