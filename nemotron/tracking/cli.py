"""Tracking commands for after (or without) the MLflow UI.

    python -m nemotron.tracking sync <run_dir> [--uri URI] [--experiment NAME] [--status FINISHED]
    python -m nemotron.tracking compare <parent run id | multirun dir> [--uri URI] [--metric loss] [--out PNG]
    python -m nemotron.tracking compare-evals <eval run dir | results JSON | run id> ... [--uri URI] [--out PNG]
    python -m nemotron.tracking lineage <artifact name[@version] | path> [--registry FILE]
    python -m nemotron.tracking artifacts [--registry FILE]

`sync` uploads what a run directory buffered while the server was unreachable (creating the run if
it never reached the server), its end artifacts, lineage and final status. Exit status: 0 done,
1 the store is still unreachable, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from nemotron.tracking.registry import DEFAULT_REGISTRY, ArtifactNotFound, Registry, lineage, registry_path


def _load_run(run_dir: Path):
    from omegaconf import OmegaConf

    config = run_dir / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{config} not found: give the run directory (it holds config.yaml and tracking/)")
    cfg = OmegaConf.load(config)
    if "run_dir" not in cfg or cfg.run_dir is None:
        cfg.run_dir = str(run_dir)
    return cfg, OmegaConf.to_container(cfg, resolve=True)


def _lineage_entries(cfg, refs: dict) -> dict:
    registry = Registry(registry_path(cfg))
    found = {}
    for kind, names in refs.items():
        entries = []
        for ref in names:
            try:
                entries.append(registry.get(ref))
            except ArtifactNotFound:
                pass
        found[kind] = entries
    return found


def with_uri_password(uri: Optional[str]) -> Optional[str]:
    """The tracking URI state.json recorded, its hidden password put back from the variable the run got
    it in (NEMOTRON_TRACKER_URI_PASSWORD), when this shell has it."""
    from nemotron.tracking.secrets import REDACTED, uri_password_name

    password = os.environ.get(uri_password_name("tracker.uri"))
    if uri and password and f":{REDACTED}@" in uri:
        return uri.replace(f":{REDACTED}@", f":{password}@", 1)
    return uri


def sync(args: argparse.Namespace) -> int:
    from nemotron.tracking.buffer import RunFiles
    from nemotron.tracking.store import RunStore

    run_dir = Path(args.run_dir).resolve()
    cfg, container = _load_run(run_dir)
    files = RunFiles(run_dir)
    state = files.state()
    uri = args.uri or with_uri_password(state.get("uri"))
    store = RunStore(cfg, container, files, uri=uri, experiment=args.experiment)
    pending = files.pending()
    status = args.status or state.get("final_status") or "KILLED"
    try:
        run_id = store.ensure_run()
        store.finish(status, _lineage_entries(cfg, state.get("lineage") or {}))
    except Exception as exc:  # noqa: BLE001 - report, do not trace
        print(f"error: could not sync {run_dir} to {store.uri}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    Registry(registry_path(cfg)).set_run_id(str(cfg.run_dir), run_id)
    print(f"synced {pending} step records of {run_dir} to run {run_id} in {store.uri} (status {status})")
    return 0


def compare(args: argparse.Namespace) -> int:
    from nemotron.tracking.compare import COLUMNS, parent_from_dir, summarize, write_figure
    from nemotron.tracking.plots import table
    from nemotron.tracking.settings import tracking_uri
    from nemotron.tracking.store import connect

    parent, uri = args.sweep, args.uri
    if Path(args.sweep).is_dir():
        parent, recorded = parent_from_dir(Path(args.sweep))
        uri = uri or recorded
        if parent is None:
            print(f"error: no member of {args.sweep} recorded a sweep parent run (was it run with "
                  "-m and tracker=mlflow?)", file=sys.stderr)
            return 2
    from mlflow.exceptions import MlflowException

    client = connect(uri or tracking_uri({}))
    try:
        rows, curves = summarize(client, parent, args.metric)
    except MlflowException as exc:  # an unknown run id, or one of another store
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {args.sweep}: not a sweep directory and not a parent run of {client.tracking_uri} "
              f"({first})", file=sys.stderr)
        return 2
    if not rows:
        print(f"error: run {parent} has no child runs", file=sys.stderr)
        return 2
    print(table(rows, COLUMNS))
    out = Path(args.out or f"compare_{parent[:8]}_{args.metric}.png")
    if write_figure(curves, out, f"sweep {parent[:8]}", args.metric):
        print(f"plot: {out}")
    return 0


def compare_evals(args: argparse.Namespace) -> int:
    from nemotron.tracking.eval_compare import eval_table, load_scores, write_eval_figure

    try:
        runs = load_scores(args.runs, args.uri)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(eval_table(runs))
    out = Path(args.out or "compare_evals.png")
    if write_eval_figure(runs, out, f"eval scores of {len(runs)} run(s)"):
        print(f"plot: {out}")
    return 0


def show_lineage(args: argparse.Namespace) -> int:
    print("\n".join(lineage(Registry(args.registry), args.ref)))
    return 0


def list_artifacts(args: argparse.Namespace) -> int:
    registry = Registry(args.registry)
    for name, versions in sorted(registry.load().items()):
        for e in versions:
            print(f"{name}@{e['version']}  [{e['kind']}]  {e['path']}  {e['hash'][:19]}  run {e.get('run_id')}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nemotron.tracking", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sync", help="upload a run directory's buffered metrics, artifacts and status")
    s.add_argument("run_dir")
    s.add_argument("--uri", help="tracking URI (default: the one the run used)")
    s.add_argument("--experiment", help="experiment for a run that never reached the store")
    s.add_argument("--status", choices=("FINISHED", "FAILED", "KILLED"), help="final status to set")
    s.set_defaults(func=sync)
    c = sub.add_parser("compare", help="table and one figure (loss, val_loss, lr, stage figures) of a sweep's members")
    c.add_argument("sweep", help="parent run id or multirun directory")
    c.add_argument("--uri")
    c.add_argument("--metric", default="loss")
    c.add_argument("--out", help="PNG to write (default compare_<parent>_<metric>.png)")
    c.set_defaults(func=compare)
    e = sub.add_parser("compare-evals", help="eval runs side by side: a table of their scores and a bar figure")
    e.add_argument("runs", nargs="+", help="eval run directories, results JSON files or MLflow run ids")
    e.add_argument("--uri", help="tracking URI for run ids (default: the usual one)")
    e.add_argument("--out", help="PNG to write (default compare_evals.png)")
    e.set_defaults(func=compare_evals)
    for name, func, text in (("lineage", show_lineage, "artifact -> producing run -> data/config chain"),
                             ("artifacts", list_artifacts, "list registered artifacts")):
        a = sub.add_parser(name, help=text)
        if name == "lineage":
            a.add_argument("ref", help="name, name@version or a registered path")
        a.add_argument("--registry", default=DEFAULT_REGISTRY, help=f"registry file (default {DEFAULT_REGISTRY})")
        a.set_defaults(func=func)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from nemotron.tracking.store import TrackingError

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ArtifactNotFound, FileNotFoundError, json.JSONDecodeError, TrackingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
