"""`hydra/launcher=nemotron` and `hydra/sweeper=nemotron`: the -m path of `python -m nemotron.train`.

The launcher hands a sweep's members to `nemotron.sweep_launch`, which checks every member and then
submits them as Slurm job arrays (or runs them here on cluster=local). The sweeper is Hydra's basic
sweeper without its up-front re-composition of every member (~85 ms each: 22 s for 256 members),
because the launcher composes, validates and preflights each member itself before anything starts.
Importing this module loads no torch, megatron or mlflow. No `from __future__ import annotations`:
Hydra executes plugin modules outside sys.modules, where dataclasses cannot resolve string annotations.
"""


from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher

from nemotron.hydra_compat import BasicSweeper


@dataclass
class NemotronLauncherConf:
    """Config of the launcher (it has no settings of its own: the `cluster` group holds them)."""

    _target_: str = "hydra_plugins.nemotron_launcher.nemotron_launcher.NemotronLauncher"


@dataclass
class NemotronSweeperConf:
    """Hydra's basic sweeper settings: batch size and sweep definitions from config."""

    _target_: str = "hydra_plugins.nemotron_launcher.nemotron_launcher.NemotronSweeper"
    max_batch_size: Optional[int] = None
    """Members launched per batch; null launches the whole sweep at once (one set of arrays)."""
    params: Optional[Dict[str, str]] = None
    """Sweep definitions (key: values) added to the command line's."""


class NemotronLauncher(Launcher):
    """Checks every member, then submits them as Slurm job arrays or runs them on this machine."""

    def __init__(self) -> None:
        self.hydra_context: Any = None
        self.task_function: Any = None
        self.config: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from nemotron.launchers.sweep import launch

        return launch(self.hydra_context, self.task_function, self.config, job_overrides, initial_job_idx)


class NemotronSweeper(BasicSweeper):
    """BasicSweeper minus validate_batch_is_legal: NemotronLauncher checks each member itself, faster."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        launcher_checks = type(self.launcher).__name__ == "NemotronLauncher"
        if not launcher_checks:
            super().validate_batch_is_legal(batch)


def _register(store: ConfigStore) -> List[None]:
    return [store.store(group="hydra/launcher", name="nemotron", node=NemotronLauncherConf, provider="nemotron"),
            store.store(group="hydra/sweeper", name="nemotron", node=NemotronSweeperConf, provider="nemotron")]


_register(ConfigStore.instance())
