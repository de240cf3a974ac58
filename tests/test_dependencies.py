"""pyproject.toml says what the code assumes.

- Each compat module's `SUPPORTED` range (the releases whose private parts it was checked against)
  equals pyproject.toml's requirement for that distribution: probed at and around every bound of
  either, a version one admits and the other refuses fails the test. Our own stdlib checker
  (nemotron/common/versions.py, used by the compat modules at run time) agrees with `packaging` there.
- Every third-party top-level import in nemotron/, launchers/ and hydra_plugins/ (imports inside
  functions too) is declared: in `dependencies`, or for GPU-only packages in the `gpu` extra.
"""

from __future__ import annotations

import ast
import importlib
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from nemotron.common.versions import admits, refusal

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
COMPAT_MODULES = [
    "nemotron.launchers.submitit_compat",
    "nemotron.config.hydra_compat",
    "nemotron.runtime.transformers_compat",
    "nemotron.hf.dcp_compat",
    "nemotron.runtime.cpu_compat",
    "nemotron.runtime.model.inference_compat",
    "nemotron.runtime.eval.lm_eval_compat",
]
IMPORT_TO_DISTRIBUTION = {
    "yaml": "PyYAML",
    "megatron": "megatron-core",
    "hydra": "hydra-core",
    "jinja2": "Jinja2",
    "transformer_engine": "transformer-engine",
    "mamba_ssm": "mamba-ssm",
    "causal_conv1d": "causal-conv1d",
    "lm_eval": "lm-eval",
}
"""Import names whose distribution is named otherwise (the rest: the same name)."""
GPU_ONLY = {"transformer-engine", "mamba-ssm", "causal-conv1d"}
"""May be declared in the `gpu` extra instead of `dependencies`."""
SOURCES = ("nemotron", "launchers", "hydra_plugins")
FIRST_PARTY = {"nemotron", "launchers", "hydra_plugins"}


def requirements(group: list) -> dict:
    return {canonicalize_name(r.name): r for r in map(Requirement, group)}


DEPENDENCIES = requirements(PYPROJECT["project"]["dependencies"])
GPU_EXTRA = requirements(PYPROJECT["project"]["optional-dependencies"]["gpu"])


def probes(*specs: SpecifierSet) -> list:
    """Versions at and around every bound of the specifiers: just below, at, a patch above, next minor."""
    found = {"0.1", "99.0"}
    for spec in specs:
        for clause in spec:
            major, minor, *_ = (*Version(clause.version).release, 0, 0)
            found |= {
                clause.version,
                f"{major}.{minor}.1",
                f"{major}.{minor + 1}",
                f"{major}.{minor + 1}.0.post1",
                f"{major}.{max(minor - 1, 0)}.99",
                f"{major - 1}.99" if major else "0.0.1",
                f"{major + 1}.0",
            }
    return sorted(found, key=Version)


def compat_ranges() -> list:
    out = []
    for module in COMPAT_MODULES:
        supported = importlib.import_module(module).SUPPORTED
        out += [(module, name, spec) for name, spec in supported.items()]
    return out


@pytest.mark.parametrize("module,distribution,spec", compat_ranges())
def test_compat_range_equals_pyproject(module, distribution, spec):
    declared = DEPENDENCIES.get(canonicalize_name(distribution))
    assert declared is not None, f"{module} checks {distribution}, which pyproject.toml does not declare"
    ours, theirs = SpecifierSet(spec), declared.specifier
    for version in probes(ours, theirs):
        assert ours.contains(version) == theirs.contains(version), (
            f"{version}: {module} SUPPORTED {distribution}{spec} and pyproject {declared} disagree"
        )
        assert admits(spec, version) == ours.contains(version), f"{version}: our checker and packaging disagree"


def test_compat_modules_accept_what_is_installed_and_refuse_outside():
    for module, distribution, spec in compat_ranges():
        assert refusal({distribution: spec}, module) is None, f"{module}: the installed {distribution} is refused"
        upper = [c for c in SpecifierSet(spec) if c.operator == "<"]
        if upper:
            line = refusal({distribution: spec}, module, {distribution: upper[0].version})
            assert line and f"checked against {distribution}{spec}; {upper[0].version} is installed" in line


def test_checker_reads_build_and_container_versions():
    assert admits(">=2.4,<2.14", "2.13.0+cpu") and admits(">=2.4,<2.14", "2.9.0a0+git50eac81")
    assert not admits(">=1.5,<1.6", "1.6.0") and admits(">=1.5,<1.6", "1.5.0") and admits("==1.5", "1.5.0")


def third_party_imports() -> dict:
    """top-level import name -> files importing it (absolute imports only)."""
    found: dict = {}
    for root in SOURCES:
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, []).append(str(path.relative_to(REPO)))
    return found


def test_every_third_party_import_is_declared():
    imports = third_party_imports()
    assert {"torch", "yaml", "matplotlib", "submitit"} <= set(imports)  # the scan sees what it must
    missing = []
    for name, files in sorted(imports.items()):
        dist = canonicalize_name(IMPORT_TO_DISTRIBUTION.get(name, name))
        if dist in DEPENDENCIES or (dist in GPU_EXTRA and dist in GPU_ONLY):
            continue
        missing.append(f"{name} ({IMPORT_TO_DISTRIBUTION.get(name, name)}), imported by {', '.join(files[:3])}")
    assert not missing, "imported but not declared in pyproject.toml: " + "; ".join(missing)
