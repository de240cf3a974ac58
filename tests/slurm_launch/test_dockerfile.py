"""docker/Dockerfile, read statically (no docker here): its pins agree with pyproject.toml, it keeps the
image's torch, copies what the project needs, and its import check names what a job's first step checks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from nemotron.common.versions import admits
from nemotron.launchers import env_check
from nemotron.launchers.snapshot import CODE_PATHS

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "docker" / "Dockerfile").read_text()
PINNED = {  # build argument -> distribution
    "MEGATRON_CORE_VERSION": "megatron-core",
    "SUBMITIT_VERSION": "submitit",
    "CAUSAL_CONV1D_VERSION": "causal-conv1d",
    "MAMBA_SSM_VERSION": "mamba-ssm",
}


def pyproject_ranges() -> dict:
    """{distribution: specifier} of the main dependencies and the `gpu` extra."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = [*project["dependencies"], *project["optional-dependencies"]["gpu"]]
    return {env_check.normalize(n): s for n, s in (re.match(r"([\w.-]+)(?:\[.*\])?(.*)", d).groups() for d in deps)}


def run_lines() -> list:
    """Each RUN instruction as one line (continuations joined)."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line for line in joined.splitlines() if line.startswith("RUN ")]


def test_every_pinned_version_is_inside_pyprojects_range_and_is_what_pip_installs():
    ranges = pyproject_ranges()
    for arg, dist in PINNED.items():
        version = re.search(rf"^ARG {arg}=(\S+)$", DOCKERFILE, re.M).group(1)
        assert admits(ranges[dist], version), f"docker/Dockerfile {arg}={version} is outside {dist}{ranges[dist]}"
        assert f'"{dist}==${{{arg}}}"' in DOCKERFILE


def test_the_images_torch_stack_is_kept():
    assert re.search(r"^ARG BASE_IMAGE=nvcr\.io/nvidia/pytorch:\d\d\.\d\d-py3$", DOCKERFILE, re.M)
    installs = [line for line in run_lines() if "pip install" in line]
    constraint = DOCKERFILE.index("ENV PIP_CONSTRAINT=")
    starts = [m.start() for m in re.finditer(r"^RUN [^\n]*pip install", DOCKERFILE, re.M)]
    assert len(starts) == len(installs) == 3 and min(starts) > constraint  # every install is constrained
    for line in installs:
        assert not re.search(r"\b(torch|transformer[-_]engine|triton)\b[=<> ]", line), line
    kernels = next(line for line in installs if "mamba-ssm" in line)
    assert "--no-build-isolation" in kernels and "causal-conv1d" in kernels


def test_the_project_is_copied_whole_and_the_import_check_names_what_a_job_needs():
    copied = set(re.findall(r"^COPY (\S+)", DOCKERFILE, re.M))
    assert set(CODE_PATHS) <= copied, set(CODE_PATHS) - copied
    check = next(line for line in run_lines() if "python -c" in line)
    imported = {m.strip() for m in re.search(r"import ([\w., ]+);", check).group(1).split(",")}
    assert {*env_check.JOB_NEEDS.values(), "mlflow"} - {"numpy", "psutil", "tokenizers"} <= imported
    assert {"transformer_engine.pytorch", "mamba_ssm", "causal_conv1d"} <= imported
    assert "/opt/nemotron/launchers/env_check.py" in check  # the job's own first step, at build time
