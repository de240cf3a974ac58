"""`hydra/launcher=nemotron` and `hydra/sweeper=nemotron`: registered here, built in nemotron.launchers.

The launcher is hydra-submitit-launcher's `BaseSubmititLauncher` with its config dataclass
(`nemotron.config.schema_launcher.NemotronLauncherConf`, a `SlurmQueueConf`), so `hydra.launcher.*`
keys have their stock names; `launch` hands the members to `nemotron.launchers.sweep`, which checks
every member and then submits them through submitit as Slurm job arrays (or runs them here on
cluster=local). The sweeper is Hydra's basic
sweeper without its up-front re-composition of every member (~85 ms each: 22 s for 256 members),
because the launcher composes, validates and preflights each member itself before anything starts.
Importing this module loads no torch, megatron or mlflow. No `from __future__ import annotations`:
Hydra executes plugin modules outside sys.modules, where dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from nemotron.config.hydra_compat import BasicSweeper
from nemotron.config.schema_launcher import NemotronLauncherConf


@dataclass
class NemotronSweeperConf:
    """Hydra's basic sweeper settings: batch size and sweep definitions from config."""

    _target_: str = "hydra_plugins.nemotron_launcher.nemotron_launcher.NemotronSweeper"
    max_batch_size: Optional[int] = None
    """Members launched per batch; null launches the whole sweep at once (one set of arrays)."""
    params: Optional[Dict[str, str]] = None
    """Sweep definitions (key: values) added to the command line's."""


class NemotronLauncher(BaseSubmititLauncher):
    """Checks every member, then submits them through submitit as Slurm job arrays (or runs them here).

    Unlike the stock launcher it never pickles itself, the config or the task function: each member's
    job runs a small `RankTask` (paths) on a config resolved at submit, and `launch` returns once
    sbatch accepted the arrays."""

    _EXECUTOR = "slurm"

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from nemotron.launchers.launcher_conf import explicit
        from nemotron.launchers.sweep import launch

        return launch(
            self.hydra_context, self.task_function, self.config, job_overrides, initial_job_idx, explicit(self.params)
        )


class NemotronSweeper(BasicSweeper):
    """BasicSweeper minus validate_batch_is_legal: NemotronLauncher checks each member itself, faster."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        launcher_checks = type(self.launcher).__name__ == "NemotronLauncher"
        if not launcher_checks:
            super().validate_batch_is_legal(batch)


def _register(store: ConfigStore) -> List[None]:
    return [
        store.store(group="hydra/launcher", name="nemotron", node=NemotronLauncherConf, provider="nemotron"),
        store.store(group="hydra/sweeper", name="nemotron", node=NemotronSweeperConf, provider="nemotron"),
    ]


_register(ConfigStore.instance())
