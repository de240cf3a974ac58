"""Compose-path cost: `nemotron.train ... --cfg job` against a bare 4-group `@hydra.main` app.

    python bench/compose_overhead.py [--repeats 7]

Both run as fresh processes on the same machine in the same invocation; the bare app is written to a
temporary folder. Prints each median wall time and, last, the ratio ours / bare (the runspec plugin,
schema validation of every key, and recipe discovery are the difference).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_APP = '''
import hydra

@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    pass

if __name__ == "__main__":
    main()
'''
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


def median_wall(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare = median_wall([sys.executable, str(write_bare_app(Path(tmp))), "--cfg", "job"], args.repeats)
    ours = median_wall([sys.executable, "-m", "nemotron.train", "+recipe=nano3/pretrain", "--cfg", "job"],
                       args.repeats)
    print(f"bare @hydra.main, 4 groups, --cfg job : {bare:.3f} s (median of {args.repeats})")
    print(f"nemotron.train +recipe, --cfg job     : {ours:.3f} s (median of {args.repeats})")
    print(f"ratio ours / bare: {ours / bare:.2f}")


if __name__ == "__main__":
    main()
