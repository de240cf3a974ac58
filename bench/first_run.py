"""The first run's cost: the README's main command, whole, against a bare Megatron-Core script.

    python bench/first_run.py [--rounds 3] [--recipe nano3/pretrain] [override ...]

Ours: `python -m nemotron.train +recipe=nano3/pretrain` as a fresh process, with
`paths.output_root` a new empty folder each round, so every round is a first run (a new MLflow
store, run directory, tracking files, the final checkpoint); the data cache is warm (round 0, not
timed, prepares it). Baseline: bench/first_run_bare.py, a fresh process that imports torch and
Megatron-Core and trains the same model, data, seed and steps (read from ours' resolved
config.yaml; both print the same last loss). Rounds alternate; each wall time is the whole
process. Also timed: `... dry_run=true`, whose target is <= 1.0 s here.
Prints the medians and, last, the ratio ours / bare (target <= 1.3).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
LOSS = re.compile(r"loss [\d.]+ -> ([\d.]+)|last loss ([\d.]+)")


def timed(command: list, cwd: Path) -> tuple:
    """(wall seconds, stdout + stderr) of one fresh process; exits on failure."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout}{done.stderr}")
    return wall, done.stdout + done.stderr


def last_loss(output: str) -> str:
    found = [a or b for a, b in LOSS.findall(output)]
    return found[-1] if found else "?"


def ours(recipe: str, overrides: list, root: Path) -> tuple:
    command = [sys.executable, "-m", "nemotron.train", f"+recipe={recipe}", f"paths.output_root={root}", *overrides]
    wall, output = timed(command, BENCH.parent)
    config = next(root.glob("*/*/*/config.yaml"))
    return wall, output, config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recipe", default="nano3/pretrain")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    ours_s, bare_s, dry_s = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds + 1):
            wall, output, config = ours(args.recipe, args.overrides, Path(tmp) / f"ours{round_}")
            bare, bare_output = timed([sys.executable, str(BENCH / "first_run_bare.py"), str(config)], BENCH.parent)
            dry, _ = timed(
                [
                    sys.executable,
                    "-m",
                    "nemotron.train",
                    f"+recipe={args.recipe}",
                    "dry_run=true",
                    f"paths.output_root={tmp}/dry",
                    *args.overrides,
                ],
                BENCH.parent,
            )
            if round_ == 0:
                print(f"round 0 (warm-up, not counted): ours {wall:.1f} s, bare {bare:.1f} s")
                continue
            ours_s.append(wall)
            bare_s.append(bare)
            dry_s.append(dry)
            print(
                f"round {round_}: ours {wall:.1f} s, bare {bare:.1f} s, dry run {dry:.2f} s | last loss "
                f"ours {last_loss(output)} bare {last_loss(bare_output)}",
                flush=True,
            )
        lines = [line for line in output.splitlines() if line.strip()]
        print(f"ours printed {len(lines)} lines:\n  " + "\n  ".join(lines))
    print(
        f"median: ours {statistics.median(ours_s):.1f} s, bare {statistics.median(bare_s):.1f} s, "
        f"dry run {statistics.median(dry_s):.2f} s (target <= 1.0)"
    )
    print(
        f"ratio ours / bare: {statistics.median(ours_s) / statistics.median(bare_s):.2f} median of "
        f"{args.rounds} (best: {min(ours_s) / min(bare_s):.2f}; target <= 1.3)"
    )


if __name__ == "__main__":
    main()
