"""nemotron.config.compose.compose_run from a process started outside the checkout (benches, scripts).

An editable install hides hydra_plugins/ from Hydra's plugin scan there, so the `nemotron` sweeper
the primary config names could not be found; compose_run puts the checkout on the path itself.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
from nemotron.config.compose import compose_run
cfg = compose_run(["+recipe=gpt/pretrain", "train.steps=3"], run_dir="{run_dir}")
print(cfg.recipe.name, cfg.train.steps)
"""


def test_compose_run_works_from_outside_the_checkout(tmp_path):
    code = PROBE.format(run_dir=tmp_path / "run")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.split() == ["gpt/pretrain", "3"]
