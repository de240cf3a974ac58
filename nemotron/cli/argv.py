"""Let Hydra flags and overrides mix on the command line, as researchers type them.

Hydra's argument parser takes overrides as one positional run, so
`python -m nemotron.train +recipe=x model.num_layers=8 -m optim.lr=1e-4,3e-4` is refused
("unrecognized arguments"). `flags_first` moves Hydra's flags (with their values) ahead of the
overrides, keeping each group's order, before Hydra parses the line.
"""

from __future__ import annotations

from typing import List

FLAGS_WITH_VALUE = {
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--experimental-rerun",
    "--shell-completion",
    "-sc",
}
"""Hydra flags whose value is the next argument."""
INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
"""Optional values of `--info`."""


def flags_first(argv: List[str]) -> List[str]:
    """argv with every Hydra flag (and its value) moved before the overrides."""
    flags: List[str] = []
    overrides: List[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            overrides.append(arg)
        else:
            flags.append(arg)
            takes_value = arg in FLAGS_WITH_VALUE or (
                arg == "--info" and i + 1 < len(argv) and argv[i + 1] in INFO_TOPICS
            )
            if takes_value and i + 1 < len(argv):
                i += 1
                flags.append(argv[i])
        i += 1
    return flags + overrides


def recipe_as_append(argv: List[str]) -> List[str]:
    """argv with `recipe=NAME` written `+recipe=NAME`: the recipe is the one group the primary config
    does not list, so Hydra would refuse the plain form ("Could not override 'recipe'")."""
    return ["+" + arg if arg.startswith("recipe=") else arg for arg in argv]


DRY_RUN_QUIET = {
    "hydra.output_subdir": "null",
    "hydra/job_logging": "none",
    "hydra/hydra_logging": "none",
}
"""What a dry run adds so that Hydra writes no `.hydra/` records and no log file (a tenth of a second,
and nothing left on disk); a key the command line sets itself is left to it."""


def is_dry_run(argv: List[str]) -> bool:
    """A single run (no -m) with dry_run=true on its command line."""
    single = not {"-m", "--multirun"}.intersection(argv)
    return single and any(a.lstrip("+").lower() == "dry_run=true" for a in argv)


def quiet_dry_run(argv: List[str]) -> List[str]:
    """argv, plus DRY_RUN_QUIET for a dry run."""
    if not is_dry_run(argv):
        return argv
    given = {a.lstrip("+~").split("=", 1)[0] for a in argv}
    return argv + [f"{key}={value}" for key, value in DRY_RUN_QUIET.items() if key not in given]
