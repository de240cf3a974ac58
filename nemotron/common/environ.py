"""The environment of the processes the compose/launch layer starts (standard library only).

`python -m nemotron.train` sets `HYDRA_FULL_ERROR=1` for itself (so it can print one-line errors) and
marks that it did; children (local ranks, sbatch, sacct, ...) get the user's environment back.
"""

from __future__ import annotations

import os
from typing import Dict

OWN_FULL_ERROR = "NEMOTRON_OWNS_HYDRA_FULL_ERROR"
"""Set beside HYDRA_FULL_ERROR when our entry point, not the user, turned it on."""


def child_environ() -> Dict[str, str]:
    """The environment for processes we start, without the switches our entry point set for itself."""
    env = dict(os.environ)
    if env.pop(OWN_FULL_ERROR, None):
        env.pop("HYDRA_FULL_ERROR", None)
    return env
