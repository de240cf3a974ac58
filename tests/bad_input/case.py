"""One bad command of the bad-input suite, and how the suite runs a batch of them."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Tuple

from cli_support import run_cli


@dataclass(frozen=True)
class Case:
    """`python -m nemotron.train ARGS` must exit `code` with at most `max_lines` lines naming `expect`."""

    name: str
    args: Tuple[str, ...]
    expect: str
    """A substring of the error line: the key, value, file:line or path at fault."""
    env: Dict[str, str] = field(default_factory=dict, hash=False)
    code: int = 2
    max_lines: int = 2
    files: Dict[str, str] = field(default_factory=dict, hash=False)
    """Files written under the case's own directory first ({root} in args and env is that directory)."""


def run_cases(cases, root: Path) -> dict:
    """name -> (CompletedProcess, its own output root), two processes at a time."""

    def one(numbered):
        num, case = numbered
        here = root / f"{num:03d}_{re.sub(r'[^A-Za-z0-9]+', '_', case.name)[:60]}"
        for rel, text in case.files.items():
            (here / rel).parent.mkdir(parents=True, exist_ok=True)
            (here / rel).write_text(text)
        out = here / "outputs"
        out.mkdir(parents=True)
        args = [a.replace("{root}", str(here)) for a in case.args]
        env = {k: v.replace("{root}", str(here)) for k, v in case.env.items()}
        result = run_cli(
            f"paths.output_root={out}", f"paths.cache_dir={root / 'cache'}", *args, env=env, cwd=here, timeout=120
        )
        return case.name, (result, out)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, enumerate(cases)))
