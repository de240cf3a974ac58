"""What a pipeline leaves on disk: a record per finished stage, the pipeline's own record, registry entries.

- `<stage_dir>/stage.json`: written when a stage finished and its outputs exist: config hash, inputs,
  outputs with their content hashes and registry refs. A rerun skips a stage whose record has the
  same config hash and whose outputs still hash the same.
- `<paths.output_root>/pipelines/<name>/pipeline.json`: the last launch: each stage's directory,
  state and (Slurm) job id, the finishing job and the MLflow parent run; `python -m nemotron.jobs`
  lists it as one unit.
- Outputs are registered as `<pipeline>/<artifact>` in the artifact registry (nemotron/tracking/registry.py)
  with the consumed artifacts as inputs, so `python -m nemotron.tracking lineage nano3/rl_model`
  follows the chain back to the data. No secret values: overrides are stored scrubbed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from nemotron.common.atomic_files import read_json, write_json_atomic
from nemotron.pipe.plan import StagePlan
from nemotron.tracking.registry import Registry, content_hash, ref_of, registry_path
from nemotron.tracking.secrets import scrub_text

STAGE_RECORD = "stage.json"
PIPELINE_RECORD = "pipeline.json"


def write_json(path: Path, content: Dict[str, Any]) -> None:
    """Replace `path` atomically and durably (nemotron/common/atomic_files.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, content)


def has_files(path: Path) -> bool:
    """A file, or a directory holding at least one file."""
    return path.is_file() or (path.is_dir() and any(p.is_file() for p in path.rglob("*")))


def finished(plan: StagePlan) -> Optional[Dict[str, Any]]:
    """The stage's record when it finished for this same config and its outputs are unchanged; else None."""
    rec = read_json(plan.stage_dir / STAGE_RECORD)
    if not rec or rec.get("config_hash") != plan.config_hash:
        return None
    for out in rec.get("outputs", {}).values():
        path = Path(out["path"])
        if not has_files(path) or content_hash([path])[0] != out["hash"]:
            return None
    return rec if set(rec.get("outputs", {})) == set(plan.outputs) else None


def run_id_in(stage_dir: Any) -> Optional[str]:
    """The MLflow run id the stage's tracker left in its run directory, if any."""
    path = Path(stage_dir) / "tracking" / "mlflow_run_id"
    return path.read_text().strip() if path.is_file() else None


def missing_outputs(outputs: Dict[str, Dict[str, str]]) -> List[str]:
    """Produced paths (artifact -> {kind, path}) that are absent (or empty) after the stage ran."""
    return [f"{name}: {out['path']}" for name, out in outputs.items() if not has_files(Path(out["path"]))]


def facts(plan: StagePlan) -> Dict[str, Any]:
    """What recording a stage needs, as plain data (a Slurm pipeline's finishing job gets it pickled):
    no config object, no secret values."""
    return {
        "stage": plan.name,
        "recipe": plan.stage.recipe,
        "stage_dir": str(plan.stage_dir),
        "config_hash": plan.config_hash,
        "overrides": [scrub_text(o) for o in plan.overrides],
        "inputs": dict(plan.inputs),
        "outputs": {name: dict(out) for name, out in plan.outputs.items()},
        "upstream": list(plan.upstream),
        "registry": str(registry_path(plan.cfg)),
    }


def input_refs(stage: Dict[str, Any], done: Dict[str, Dict[str, Any]]) -> List[str]:
    """Registry refs of what the stage consumed (its producers' records, or the registry for the rest)."""
    refs = []
    for artifact, path in stage["inputs"].items():
        producer = next((r for r in done.values() if artifact in r.get("outputs", {})), None)
        if producer is not None:
            refs.append(producer["outputs"][artifact]["ref"])
        else:
            found = Registry(stage["registry"]).find_path(path)
            refs += [ref_of(found)] if found else []
    return refs


def record_stage(
    pipeline: str, plan: StagePlan, done: Dict[str, Dict[str, Any]], run_id: Optional[str] = None
) -> Dict[str, Any]:
    """Register the stage's outputs (with lineage) and write its record; the record."""
    return record_facts(pipeline, facts(plan), done, run_id)


def record_facts(
    pipeline: str, stage: Dict[str, Any], done: Dict[str, Dict[str, Any]], run_id: Optional[str] = None
) -> Dict[str, Any]:
    """record_stage from a stage's `facts`."""
    registry = Registry(stage["registry"])
    stage_dir = Path(stage["stage_dir"])
    inputs = input_refs(stage, done)
    producer = {
        "run_id": run_id,
        "run_dir": str(stage_dir),
        "config": str(stage_dir / "config.yaml"),
        "recipe": stage["recipe"],
        "pipeline": pipeline,
        "stage": stage["stage"],
    }
    outputs = {}
    for name, out in stage["outputs"].items():
        path = Path(out["path"])
        digest = content_hash([path])
        entry = registry.register(f"{pipeline}/{name}", out["kind"], path, digest, producer, inputs=inputs)
        outputs[name] = {"kind": out["kind"], "path": str(path), "hash": digest[0], "ref": ref_of(entry)}
    rec = {
        "pipeline": pipeline,
        "stage": stage["stage"],
        "recipe": stage["recipe"],
        "config_hash": stage["config_hash"],
        "overrides": stage["overrides"],
        "inputs": stage["inputs"],
        "input_refs": inputs,
        "outputs": outputs,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(stage_dir / STAGE_RECORD, rec)
    return rec


def pipeline_dir(plans: List[StagePlan]) -> Path:
    """`<paths.output_root>/pipelines/<name>` (the parent of every stage directory)."""
    return plans[0].stage_dir.parent


def write_pipeline(pipeline: str, plans: List[StagePlan], states: Dict[str, Dict[str, Any]], **extra: Any) -> Path:
    """The pipeline's record of its latest launch; its path."""
    path = pipeline_dir(plans) / PIPELINE_RECORD
    stages = [
        {
            "stage": p.name,
            "recipe": p.stage.recipe,
            "stage_dir": str(p.stage_dir),
            "upstream": p.upstream,
            "inputs": p.inputs,
            "outputs": {a: o["path"] for a, o in p.outputs.items()},
            "dependency": p.stage.dependency.value,
            **states.get(p.name, {}),
        }
        for p in plans
    ]
    write_json(path, {"pipeline": pipeline, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "stages": stages, **extra})
    return path
