"""Dependencies point one way, checked transitively: each side is imported in a fresh process and
`sys.modules` is inspected afterwards.

- The compose/launch layer (the CLI, config, runspec, every module of nemotron.launchers, the Hydra
  plugins) loads no torch, megatron or mlflow: submitting must not pay for, or depend on, the trainer.
- The training side (nemotron.runtime.pretrain, the recipes' runtime, tracking) loads no Hydra and no
  launch code: recipes run from a resolved config alone, on a Slurm node or in a container.
A static check of each training-side file's own imports stays as a fast, precise pointer to the culprit.

The whole project's import graph is also read statically (every module of nemotron/, launchers/ and
hydra_plugins/, imports inside functions included): no import circle among project modules; nothing
below the config layer (runtime, tracking, hf, memory, common) imports it or anything above it;
nemotron.common imports only nemotron.common; config and memory import no launch, CLI or runtime code.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCH_MODULES = sorted(
    f"nemotron.launchers.{p.stem}" for p in (REPO / "launchers").glob("*.py") if p.stem != "__init__"
)
COOKBOOK_MODULES = sorted(
    f"nemotron.cookbook.{p.stem}" for p in (REPO / "nemotron" / "cookbook").glob("*.py") if p.stem != "__init__"
)
PIPE_MODULES = sorted(
    f"nemotron.pipe.{p.stem}" for p in (REPO / "nemotron" / "pipe").glob("*.py") if p.stem != "__main__"
)
COMPOSE_LAUNCH = [
    "nemotron.train",
    "nemotron.jobs",
    "nemotron.config.compose",
    "nemotron.config.validate",
    "nemotron.runspec.source",
    "nemotron.config.hydra_compat",
    "hydra_plugins.nemotron_launcher.nemotron_launcher",
    "hydra_plugins.nemotron_runspec.runspec_plugin",
    "hydra_plugins.nemotron_envtoml.envtoml_plugin",
    *LAUNCH_MODULES,
    *COOKBOOK_MODULES,
    *PIPE_MODULES,
]
HEAVY = ("torch", "megatron", "mlflow", "transformers", "safetensors")
TRAINING_ENTRY = [
    "nemotron.runtime.stages.pretrain",
    "nemotron.runtime.train.loop",
    "nemotron.runtime.script",
    "nemotron.tracking",
    "nemotron.hf.importer",
    "nemotron.hf.exporter",
]
LAUNCH_SIDE = (
    "hydra",
    "hydra_plugins",
    "nemotron.launchers",
    "nemotron.train",
    "nemotron.cli",
    "nemotron.runspec",
    "nemotron.cookbook",
    "nemotron.config.compose",
    "nemotron.config.hydra_compat",
    "nemotron.jobs",
    "nemotron.pipe",
)
TRAINING_SIDE = sorted(
    [
        *REPO.glob("recipes/**/*.py"),
        *REPO.glob("nemotron/runtime/**/*.py"),
        *REPO.glob("nemotron/tracking/*.py"),
        *REPO.glob("nemotron/hf/*.py"),
    ]
)


def loaded_after_import(modules: list) -> list:
    """Top-level and full names of every module in sys.modules after importing `modules` in a fresh python."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_launch_package_found():
    assert "nemotron.launchers.slurm" in LAUNCH_MODULES and "nemotron.launchers.scheduler" in LAUNCH_MODULES


def test_compose_and_launch_layer_loads_no_heavy_package():
    loaded = loaded_after_import(COMPOSE_LAUNCH)
    assert "hydra" in loaded and "nemotron.launchers.sweep" in loaded  # the imports happened
    assert "nemotron.cookbook.cli" in loaded and "hydra_plugins.nemotron_envtoml.envtoml_plugin" in loaded
    assert "nemotron.pipe.slurm" in loaded and "nemotron.pipe.tracking" in loaded
    heavy = sorted({m for m in loaded if m.split(".")[0] in HEAVY})
    assert not heavy, f"importing the compose/launch layer loads {heavy[:10]}"


@pytest.mark.parametrize("entry", TRAINING_ENTRY)
def test_training_side_loads_no_hydra_and_no_launch_code(entry):
    loaded = loaded_after_import([entry])
    assert entry in loaded
    bad = sorted(m for m in loaded if m.split(".")[0] in LAUNCH_SIDE or m.startswith(LAUNCH_SIDE))
    assert not bad, f"importing {entry} loads {bad[:10]}"


def test_pretrain_really_loads_the_trainer_and_no_hugging_face_package():
    # the check above would pass vacuously if pretrain were lazy; transformers is for conversion only
    loaded = loaded_after_import(["nemotron.runtime.stages.pretrain", "nemotron.runtime.stages.sft"])
    assert "torch" in loaded
    assert not sorted(m for m in loaded if m.split(".")[0] in ("transformers", "safetensors"))


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_training_side_files_found():
    assert any("recipes" in p.parts for p in TRAINING_SIDE) and any(p.name == "pretrain.py" for p in TRAINING_SIDE)


@pytest.mark.parametrize("path", TRAINING_SIDE, ids=lambda p: str(p.relative_to(REPO)))
def test_training_side_imports_no_launch_code(path):
    bad = {m for m in imported_modules(path) if m.split(".")[0] in LAUNCH_SIDE or m.startswith(LAUNCH_SIDE)}
    assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


UPLOADER_SIDE = [
    "nemotron.tracking.uploader",
    "nemotron.tracking.store",
    "nemotron.tracking.lineage",
    "nemotron.tracking.registry",
    "nemotron.tracking.plots",
]
"""The MLflow uploader process (and what it imports when a run ends): it runs beside training, on another
core, while training imports torch; importing torch or megatron itself would cost seconds at the end."""


def test_the_mlflow_uploader_loads_no_torch_even_for_lineage(tmp_path):
    blend = tmp_path / "tiny" / "blend.json"
    code = (
        "import json, sys\nfrom omegaconf import OmegaConf\n"
        f"import {', '.join(UPLOADER_SIDE)}\n"
        "from nemotron.tracking.lineage import data_files\n"
        f"cfg = OmegaConf.create({{'data': {{'prefixes': None, 'blend_file': None, 'generate_tiny': True, "
        f"'cache_dir': {str(tmp_path)!r}, 'num_documents': 1, 'tokenizer_vocab_size': 2, 'seed': 3}}}})\n"
        "try:\n    data_files(cfg)\nexcept (OSError, ValueError):\n    pass\n"  # no blend file: it is looked up
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "nemotron.common.blend" in loaded  # lineage did look for the tiny data's blend file
    assert not sorted(m for m in loaded if m.split(".")[0] in ("torch", "megatron", "hydra")), blend


# --- the whole project's import graph, read statically (imports inside functions count too) ----------

PROJECT_ROOTS = {"nemotron": REPO / "nemotron", "nemotron.launchers": REPO / "launchers"}
PLUGIN_ROOT = REPO / "hydra_plugins"


def project_modules() -> dict:
    """Every project module's dotted name -> its file; a package is named by its `__init__.py`."""
    found = {}
    roots = [*PROJECT_ROOTS.items(), *((f"hydra_plugins.{p.name}", p) for p in PLUGIN_ROOT.iterdir() if p.is_dir())]
    for prefix, root in roots:
        for path in root.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("").parts
            parts = rel[:-1] if rel[-1] == "__init__" else rel
            found[".".join((prefix, *parts))] = path
    return found


MODULES = project_modules()


def _target(name: str) -> str | None:
    """The longest project module `name` starts with (an attribute of a module names that module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def module_imports(module: str, path: Path) -> set:
    """Project modules `module` imports anywhere in its file. `import a.b.c` and `from a.b import c`
    are edges to a.b.c only: loading the parent packages on the way is no dependency on what they hold."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(_target(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else _target(base))
    return out - {None, module}


def import_graph() -> dict:
    return {m: module_imports(m, p) for m, p in MODULES.items()}


def cycles(graph: dict) -> list:
    """Each strongly connected component of more than one module (Tarjan's algorithm, iterative), told
    as one of its circles (a -> b -> ... -> a) and every module in it."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = set()
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        comp.add(top)
                        if top == node:
                            break
                    if len(comp) > 1:
                        comps.append(comp)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return [" -> ".join(_circle(graph, comp)) + f"  (all of {sorted(comp)})" for comp in comps]


def _circle(graph: dict, comp: set) -> list:
    """The shortest path from the component's first module back to itself, inside the component."""
    first = min(comp)
    paths = {first: [first]}
    queue = [first]
    for node in queue:
        for child in sorted(graph[node] & comp):
            if child == first:
                return [*paths[node], first]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(comp)


def imports_from(graph: dict, sources: tuple, targets: tuple) -> list:
    """`a -> b` for every import of a module under one of `targets` by a module under one of `sources`."""

    def under(name: str, prefixes: tuple) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    return sorted(f"{a} -> {b}" for a in graph if under(a, sources) for b in graph[a] if under(b, targets))


def test_import_graph_found():
    graph = import_graph()
    assert {"nemotron.launchers.jobs", "nemotron.config.validate", "hydra_plugins.nemotron_launcher"} <= set(graph)
    assert "nemotron.config.schema" in graph["nemotron.config.validate"]
    assert "nemotron.config.rl_rules" in graph["nemotron.config.inputs"]  # `from nemotron.config import rl_rules`


def test_no_import_circle():
    found = cycles(import_graph())
    assert not found, "import circles:\n" + "\n".join(found)


LOWER = ("nemotron.runtime", "nemotron.tracking", "nemotron.hf", "nemotron.memory", "nemotron.common")
"""What runs a job (runtime, tracking, Hugging Face conversion) and the torch-free leaves below it."""
UPPER = (
    "nemotron.config",
    "nemotron.cli",
    "nemotron.launchers",
    "nemotron.cookbook",
    "nemotron.pipe",
    "nemotron.runspec",
    "nemotron.train",
    "nemotron.jobs",
    "hydra_plugins",
)
"""The compose and launch layers, and the entry points above them."""


KNOWN_CLIMBS = {
    "nemotron.hf.megatron_side -> nemotron.config.schema": (
        "a conversion builds the model a run would: conf/model/<option>.yaml over the schema's ModelConfig, "
        "ParallelConfig and CheckpointConfig (imported inside the functions, so the converter loads no Hydra)"
    ),
}
"""Imports from below the config layer into it that are known and why; anything else fails."""


def test_nothing_below_the_config_layer_imports_it_or_anything_above():
    bad = [line for line in imports_from(import_graph(), LOWER, UPPER) if line not in KNOWN_CLIMBS]
    assert not bad, "imports running back up:\n" + "\n".join(bad)


def test_common_imports_only_common():
    graph = import_graph()
    bad = [
        line for line in imports_from(graph, ("nemotron.common",), ("nemotron",)) if "-> nemotron.common" not in line
    ]
    bad += imports_from(graph, ("nemotron.common",), ("hydra_plugins",))
    assert not bad, "nemotron.common is for leaves every layer may import:\n" + "\n".join(bad)


def test_config_and_memory_import_no_launch_cli_or_runtime_code():
    bad = imports_from(
        import_graph(),
        ("nemotron.config", "nemotron.memory"),
        ("nemotron.launchers", "nemotron.cli", "nemotron.runtime"),
    )
    assert not bad, "the config layer reaches up or into the runtime:\n" + "\n".join(bad)


def test_the_runtime_imports_no_checkpoint_tool():
    # nemotron.hf (import/export, merge-lora, average) builds on the runtime; the runtime never reaches up to it
    bad = imports_from(import_graph(), ("nemotron.runtime",), ("nemotron.hf",))
    assert not bad, "the runtime reaches up into the checkpoint tools:\n" + "\n".join(bad)


MAX_MODULE_LINES = 400
"""A module past this is two concerns in one file: split it by what its parts do."""


def test_no_module_is_over_the_size_limit():
    modules = [*REPO.glob("nemotron/**/*.py"), *REPO.glob("launchers/*.py"), *REPO.glob("hydra_plugins/**/*.py")]
    assert len(modules) > 100
    long = sorted(
        f"{p.relative_to(REPO)}: {n} lines"
        for p in modules
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    )
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)
