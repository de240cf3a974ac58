"""`nemotron steps list|show NAME`: the step catalog, every recipe with what it consumes and produces.

A step is a recipe (`recipes/*/*`, read from its PEP 723 `[tool.runspec]` block by nemotron/runspec);
what it consumes and produces comes from the pipeline contracts (`conf/pipeline/*.yaml`, typed by
config/schema_pipeline.py): each stage that runs the recipe names the artifacts it reads and writes,
with their kinds. A recipe no pipeline runs shows `-` (it reads what its own config points at).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

from nemotron.cookbook.runs import near
from nemotron.cookbook.tree import recipes, summary
from nemotron.launchers.job_records import JobsError
from nemotron.runspec.source import config_files


@dataclass
class Contract:
    """What one recipe consumes and produces across the shipped pipelines."""

    consumes: Dict[str, str] = field(default_factory=dict)
    """artifact name -> kind (or `registry` when no stage of that pipeline produces it)."""
    produces: Dict[str, str] = field(default_factory=dict)
    pipelines: List[str] = field(default_factory=list)
    """`<pipeline>.<stage>` entries that run the recipe."""


def contracts() -> Dict[str, Contract]:
    """{recipe name: its Contract} from every shipped pipeline (an unreadable one is skipped)."""
    from nemotron.pipe import spec

    out: Dict[str, Contract] = {}
    for name in spec.available():
        try:
            pipe = spec.load(name)
        except spec.PipelineError:
            continue
        kinds = {a: p.kind for s in pipe.stages for a, p in s.produces.items()}
        for stage in pipe.stages:
            contract = out.setdefault(stage.recipe, Contract())
            contract.pipelines.append(f"{pipe.name}.{stage.name}")
            contract.consumes.update({a: kinds.get(a, "registry") for a in stage.consumes})
            contract.produces.update({a: p.kind for a, p in stage.produces.items()})
    return out


def listing(items: Dict[str, str]) -> str:
    return ", ".join(f"{name} [{kind}]" for name, kind in sorted(items.items())) or "-"


def list_steps() -> int:
    found, known = recipes(), contracts()
    rows = [("STEP", "CONSUMES", "PRODUCES", "WHAT")]
    for name in sorted(found):
        contract = known.get(name, Contract())
        rows.append((name, listing(contract.consumes), listing(contract.produces), summary(found[name])))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[3])
    print("\n`nemotron steps show NAME` for one step; `python -m nemotron.train +recipe=NAME` runs it.")
    return 0


def show_step(name: str) -> int:
    found = recipes()
    if name not in found:
        raise JobsError(f"steps show {name}: no such step{near(name, sorted(found))}; see `nemotron steps list`")
    spec, contract = found[name], contracts().get(name, Contract())
    configs = ", ".join(p.stem for p in config_files(spec)) or "(none)"
    lines = [
        f"{name}: {summary(spec)}",
        f"  script:    {spec.script}",
        f"  launch:    {spec.launch}, {spec.nodes} node(s) x {spec.gpus_per_node} GPUs, image {spec.image}",
        f"  configs:   {configs} (default {spec.config_default}; in {spec.config_dir})",
        f"  consumes:  {listing(contract.consumes)}",
        f"  produces:  {listing(contract.produces)}",
        f"  pipelines: {', '.join(contract.pipelines) or '-'}",
        f"  run:       python -m nemotron.train +recipe={name}",
    ]
    words = name.split("/")
    if words[0] != "data":
        lines.append(f"            nemotron {' '.join(words)} [-c CONFIG] [-r|-b PROFILE] [-d]")
    print("\n".join(lines))
    return 0
