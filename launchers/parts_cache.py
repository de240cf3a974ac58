"""A sweep member's Slurm job parts, reused from its base's first member when nothing they read changed.

`script.job_parts` (executor parameters, rank command, environment setup, the environment check) is a
function of the config keys it reads, the code directory and the secrets; the run directory is left
as a mark the batch script fills in. So the keys it reads are recorded once per base (as the rules'
are: nemotron/config/rule_reads.py) and a later member on that base reuses the first member's parts
unless one of its changed keys, or a key of Hydra's per-member node, meets a read key, or its code
directory or secrets differ. tests/cli/test_sweep_members.py checks every member of a mixed
sweep against parts made from scratch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Tuple

from nemotron.config.hydra_compat import recording_reads
from nemotron.config.leaf_deps import final_reads, meets
from nemotron.config.rule_reads import MEMBER_HYDRA_KEYS
from nemotron.launchers.script import JobParts, job_parts


class PartsCache:
    """job_parts per member, computed in full for a base's first member and reused while valid."""

    def __init__(self, cwd: Path, launcher: Mapping[str, Any], make: Callable[..., JobParts] = job_parts) -> None:
        self.cwd, self.launcher, self.make = cwd, launcher, make
        self.bases: List[Tuple[Any, FrozenSet[str], Optional[Path], Dict[str, str], JobParts]] = []

    def parts(self, cfg: Any, changed: FrozenSet[str], code_dir: Optional[Path], secrets: Dict[str, str]) -> JobParts:
        """`job_parts(cfg, cwd, code_dir, launcher, secrets)` for a member that may differ from its base's
        first member in the keys `changed`."""
        entry = next((e for e in self.bases if e[0] is cfg), None)
        if entry is not None and self._still_valid(entry, changed, code_dir, secrets):
            return entry[4]
        with recording_reads() as reads:
            parts = self.make(cfg, self.cwd, code_dir, self.launcher, secrets)
        if entry is None:
            self.bases.append((cfg, final_reads(reads), code_dir, dict(secrets), parts))
        return parts

    @staticmethod
    def _still_valid(entry: tuple, changed: FrozenSet[str], code_dir: Optional[Path], secrets: Mapping) -> bool:
        _, reads, base_code_dir, base_secrets, _ = entry
        if code_dir != base_code_dir or dict(secrets) != base_secrets:
            return False
        return not any(meets(r, c) for r in reads for c in (*changed, *MEMBER_HYDRA_KEYS))
