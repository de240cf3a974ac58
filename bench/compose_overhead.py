"""Compose-path cost: `nemotron.train ... --cfg job` against a bare 4-group `@hydra.main` app.

    python bench/compose_overhead.py [--repeats 7]

All run as fresh processes on the same machine in the same invocation, in alternating rounds after one
warm-up each, with bytecode writing on as in a user's shell; the bare app is written to a temporary
folder. Also times the main job's dry run (`dry_run=true`: compose, validation, memory fit, the plan;
target <= 0.5 s). Prints each median wall time and, last, the ratio ours / bare (our schema, the
runspec and env.toml plugins and recipe discovery are the difference).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

BARE_APP = '''
import hydra

@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    pass

if __name__ == "__main__":
    main()
'''
OURS = [sys.executable, "-m", "nemotron.train", "+recipe=nano3/pretrain"]
GROUPS = {"model": "num_layers: 2\nhidden_size: 64\n", "data": "name: tiny\n",
          "cluster": "name: local\n", "tracker": "kind: none\n"}


def write_bare_app(root: Path) -> Path:
    (root / "conf").mkdir()
    defaults = "".join(f"  - {g}: default\n" for g in GROUPS)
    (root / "conf" / "config.yaml").write_text(f"defaults:\n{defaults}  - _self_\n")
    for group, body in GROUPS.items():
        (root / "conf" / group).mkdir()
        (root / "conf" / group / "default.yaml").write_text(body)
    (root / "app.py").write_text(BARE_APP)
    return root / "app.py"


def user_environ() -> dict:
    """This environment as a user's shell has it: Python writes bytecode. (Some sandboxes set
    PYTHONDONTWRITEBYTECODE; then our editable package recompiles every module on every start while
    the bare app's site-packages were compiled at pip install: an unfair extra ~40 ms for ours alone.)"""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wall(argv: List[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    env = user_environ()
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as out:
        commands = {
            "bare @hydra.main, 4 groups, --cfg job": [sys.executable, str(write_bare_app(Path(tmp))), "--cfg", "job"],
            "nemotron.train +recipe, --cfg job": [*OURS, "--cfg", "job"],
            "nemotron.train +recipe, dry_run=true": [*OURS, "dry_run=true", f"paths.output_root={out}"],
        }
        for argv in commands.values():  # warm-up: bytecode written, files in the page cache
            wall(argv, env)
        times: Dict[str, List[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):  # alternating: a load change hits every command alike
            for name, argv in commands.items():
                times[name].append(wall(argv, env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:<40}: {value:.3f} s (median of {args.repeats})")
    bare, ours, dry = medians.values()
    print(f"dry run of the main job: {dry:.3f} s (target <= 0.5 s)")
    print(f"ratio ours / bare: {ours / bare:.2f}")


if __name__ == "__main__":
    main()
