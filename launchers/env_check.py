"""The job's first step: does the environment the ranks will run in hold what the job needs?

    python <code>/nemotron/launchers/env_check.py --snapshot <code> --where "image X" [--gpus N] [--need mlflow]

Checked, without importing any of them (importlib.util.find_spec, importlib.metadata): the python is new
enough; `nemotron` imports from the job's code snapshot (PYTHONPATH reached the ranks); the packages every
job imports (JOB_NEEDS, plus `--need`) are there and inside the ranges of the snapshot's pyproject.toml;
with `--gpus N`, torch sees a CUDA device (the only import here, and only then). On success one line says
what was found; otherwise one line names what is missing and where, e.g.

    nemotron: image nvcr.io/nvidia/pytorch:25.09-py3 lacks megatron-core, submitit (build docker/Dockerfile;
    see docker/README.md)

and the exit status is EXIT_MISSING, so the batch script stops before srun starts the ranks.

Where it runs (`launchers/script.py`, `check_lines`): as one `srun --nodes=1 --ntasks=1` step of the batch
script, with the same pyxis flags as the ranks, before the rank step. The batch script itself runs on the
host, not in the container, so a check there would look at the wrong filesystem; one step (not every rank)
prints the answer once, into train.log, where the user looks, and fails the job before any rank starts,
and a GPU job's step sees the first node's GPUs. The same image (or python on a shared filesystem) runs
on every node, so one node speaks for all.
It is run as a file of the snapshot (not `-m`), so it answers even where `nemotron` does not import.
Standard library only, and syntax old pythons parse, so an old python gets the one line too.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import re
import sys

MIN_PYTHON = (3, 11)
"""pyproject.toml's requires-python."""
EXIT_MISSING = 78
"""EX_CONFIG (sysexits.h): the environment lacks what the job needs; rerunning in it does not help."""
JOB_NEEDS = {
    "submitit": "submitit",
    "hydra-core": "hydra",
    "omegaconf": "omegaconf",
    "PyYAML": "yaml",
    "torch": "torch",
    "megatron-core": "megatron.core",
    "numpy": "numpy",
    "psutil": "psutil",
    "tokenizers": "tokenizers",
}
"""Distribution -> import name of what every job imports: submitit's runner on each rank, the recipe's
config (omegaconf, PyYAML; hydra for the resolvers), the trainer (torch, megatron-core, numpy, psutil,
tokenizers). mlflow is added by `--need mlflow` (tracker=mlflow)."""
OPTIONAL_NEEDS = {
    "mlflow": "mlflow",
    "transformers": "transformers",
    "lm-eval": "lm_eval",
    "transformer-engine": "transformer_engine",
    "mamba-ssm": "mamba_ssm",
    "causal-conv1d": "causal_conv1d",
}
"""What `--need` may add (import names of distributions some runs need): the GPU stack's packages when
the cluster declares them (cluster.transformer_engine / cluster.mamba_ssm: compose checked the layout
against that declaration, so the image must keep it)."""
HINT = {
    "image": "build docker/Dockerfile; see docker/README.md",
    "python": "install the project's dependencies into it; see docs/containers.md",
}
"""The last words of the failure line, by where the job runs."""
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)")


def requirement_ranges(snapshot: str | None) -> dict:
    """{normalized distribution name: specifier} from the snapshot's pyproject.toml; {} when unreadable."""
    path = os.path.join(snapshot or "", "pyproject.toml")
    if not snapshot or not os.path.isfile(path):
        return {}
    import tomllib  # 3.11+, checked before this is called

    with open(path, "rb") as f:
        deps = tomllib.load(f).get("project", {}).get("dependencies", [])
    ranges = {}
    for dep in deps:
        found = _REQUIREMENT.match(dep)
        if found:
            ranges[normalize(found.group(1))] = found.group(2).strip()
    return ranges


def normalize(name: str) -> str:
    """PEP 503 name: `PyYAML` -> `pyyaml`, `hydra_core` -> `hydra-core`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def importable(module: str) -> bool:
    """Whether `module` would import (found on sys.path), without importing it (a dotted name imports
    its parents only: `megatron.core` finds `megatron`, a namespace package)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def version_of(distribution: str) -> str | None:
    """The installed version from the distribution's metadata; None for a source tree on PYTHONPATH."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def snapshot_problem(snapshot: str | None) -> str | None:
    """Why `nemotron` does not import from the snapshot (None when it does, or when there is none)."""
    spec = None
    try:
        spec = importlib.util.find_spec("nemotron")
    except (ImportError, ValueError):
        pass
    if spec is None:
        return "nemotron" + ("" if snapshot else " (cluster.snapshot=false: install the project)")
    if not snapshot:
        return None
    where = os.path.dirname(os.path.dirname(os.path.realpath(spec.origin or "")))
    if where != os.path.realpath(snapshot):
        return (
            f"the code snapshot (nemotron imports from {where}, not {snapshot}: PYTHONPATH did not reach "
            "the job; an image that sets PYTHONPATH wins under pyxis, add --container-env=PYTHONPATH)"
        )
    return None


def package_problems(needs: dict, ranges: dict, admits) -> tuple:
    """([missing distributions], [out-of-range 'name<spec> (has version)'], [found 'name version'])."""
    missing, wrong, found = [], [], []
    for dist, module in needs.items():
        if not importable(module):
            missing.append(dist)
            continue
        version = version_of(dist)
        spec = ranges.get(normalize(dist), "")
        found.append(f"{dist} {version or '(source)'}")
        if version and spec and admits is not None and not admits(spec, version):
            wrong.append(f"{dist}{spec} (has {version})")
    return missing, wrong, found


def cuda_problem(gpus: int) -> str | None:
    """With GPUs asked for: why torch cannot use them (None when it can). Imports torch (seconds)."""
    import torch

    if torch.cuda.is_available():
        return None
    sees = "is a CPU-only build" if torch.version.cuda is None else "sees no GPU"
    return f"CUDA (torch {torch.__version__} {sees}; the job asks for {gpus} GPU(s) per node)"


def version_checker(snapshot_ok: bool):
    """`admits(spec, version)` from the snapshot's nemotron.common.versions; None if nemotron does not import."""
    if not snapshot_ok:
        return None
    from nemotron.common.versions import admits

    return admits


def check(snapshot: str | None, gpus: int, extra: list) -> tuple:
    """(problems, found): what is missing or wrong, and what was found, in this python."""
    if sys.version_info < MIN_PYTHON:
        have = ".".join(map(str, sys.version_info[:3]))
        return [f"python >= {'.'.join(map(str, MIN_PYTHON))} (has {have})"], []
    needs = {**JOB_NEEDS, **{d: OPTIONAL_NEEDS[d] for d in extra}}
    snap = snapshot_problem(snapshot)
    missing, wrong, found = package_problems(needs, requirement_ranges(snapshot), version_checker(snap is None))
    problems = ([snap] if snap else []) + missing + wrong
    if not problems and gpus > 0:
        cuda = cuda_problem(gpus)
        problems += [cuda] if cuda else []
        found += [] if cuda else [f"CUDA ({gpus} GPU(s) asked per node)"]
    return problems, found


def requirements(snapshot: str, extra: list) -> list:
    """What a job needs, as pip requirements with the snapshot's ranges (`--requirements`): what the
    documented setup of a job's own environment installs (docs/containers.md)."""
    ranges = requirement_ranges(snapshot)
    return [f"{dist}{ranges.get(normalize(dist), '')}" for dist in [*JOB_NEEDS, *extra]]


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", help="the job's code snapshot (on PYTHONPATH)")
    parser.add_argument("--where", default="python", help="'image <name>', else 'python' (this python)")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs per node the job asks for (CUDA checked)")
    parser.add_argument("--need", action="append", default=[], choices=sorted(OPTIONAL_NEEDS))
    parser.add_argument("--requirements", action="store_true", help="print what a job needs, pip -r style")
    args = parser.parse_args(argv)
    if args.requirements:
        print("\n".join(requirements(args.snapshot, args.need)))
        return 0
    where = args.where if args.where.startswith("image ") else f"python {sys.executable}"
    problems, found = check(args.snapshot, args.gpus, args.need)
    if problems:
        hint = HINT["image" if args.where.startswith("image ") else "python"]
        print(f"nemotron: {where} lacks {', '.join(problems)} ({hint})", flush=True)
        return EXIT_MISSING
    print(f"nemotron: environment ok in {where}: {', '.join(found)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
