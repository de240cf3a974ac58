"""An env.toml profile as a `cluster` option: the cookbook's Slurm keys mapped onto our settings.

Key names follow the cookbook's docs (docs/train/nemo-run.md "Profile Reference") and its executor
builder (`RunConfig` of nemotron/kit/run.py): see docs/cookbook.md for the table. Our own `cluster.*`
field names (`gpu_memory_gb`, `secret_names`, `max_nodes`, ...) are accepted as they are. A key within
a small edit distance of a key we read (`partiton`) is a typo: refused with the suggestion, nothing is
submitted. Any other key with no counterpart here, and each reserved section we do not read (`[wandb]`,
`[artifacts]`, `[cache]`, `[cli]`), is one note line saying it is not used (never dropped silently); a key
whose absence would send the job somewhere else (an SSH tunnel, a docker executor) is an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import fields
from typing import Any, Callable, Dict, List, Tuple

from omegaconf import OmegaConf

from nemotron.common.paths import CONF_DIR
from nemotron.config.schema import ClusterConfig
from nemotron.cookbook.envfile import RESERVED, EnvFileError, Profile

EXECUTORS = {"slurm": "slurm", "local": "local"}
"""Cookbook executor -> the shipped cluster option a profile builds on."""
OWN_KEYS = {f.name for f in fields(ClusterConfig)} - {"name", "executor"}
"""Our cluster.* fields: set as they are."""
LAUNCHER_KEYS = (
    "gres",
    "constraint",
    "exclude",
    "comment",
    "cpus_per_gpu",
    "gpus_per_task",
    "mem_per_gpu",
    "mem_per_cpu",
)
"""Cookbook keys that are hydra-submitit-launcher keys of the same name (hydra.launcher.<key>)."""
_MEM = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)B?$", re.IGNORECASE)
_TIME = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+)(?::(\d+))?$")


def cluster_option(profile: Profile) -> Tuple[Dict[str, Any], List[str]]:
    """(the `_global_` config of `cluster=<profile>`, note lines for keys that have no counterpart)."""
    values = dict(profile.values)
    executor = values.pop("executor", "local")
    if executor not in EXECUTORS:
        raise EnvFileError(
            f"{profile.where('executor')}: profile {profile.name!r}: executor={executor!r} is not "
            f"supported here; use one of {', '.join(EXECUTORS)}"
        )
    base = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "cluster" / f"{EXECUTORS[executor]}.yaml"))
    node: Dict[str, Any] = {
        "cluster": {**base.get("cluster", {}), "name": profile.name},
        "resources": dict(base.get("resources", {})),
        "hydra": {"launcher": {}},
    }
    notes = reserved_notes(profile)
    for key in list(values):
        mapper = MAPPERS.get(key) or (own_key if key in OWN_KEYS else None)
        if mapper is None:
            refuse_typo(profile, key)
            notes.append(
                f"env.toml: profile {profile.name!r}: key {key!r} is not used here (no counterpart); "
                f"{profile.where(key)}"
            )
            continue
        mapper(node, key, values, profile)
    node["cluster"]["partition"] = partition(values, node["cluster"].get("partition"))
    if not node["hydra"]["launcher"]:
        del node["hydra"]
    return node, notes


RESERVED_USE = {
    "wandb": "tracking is MLflow here: tracker=mlflow",
    "artifacts": "artifacts are registered by pipelines: python -m nemotron.tracking",
    "cache": "caches go under paths.cache_dir",
    "cli": "the command line takes no settings from env.toml",
}
"""The cookbook's reserved sections and where their job is done here (all are notes: not used)."""
COOKBOOK_UNUSED = ("host", "user", "identity", "remote_job_dir", "lustre_mount")
"""Cookbook profile keys we know and do not use (SSH submission, Lustre): a note, never a typo."""
TYPO_DISTANCE = 2
"""A key at most this many edits from a key we read (1 for keys of 4 letters or fewer) is a typo."""


def edit_distance(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of two neighbours that turn `a` into `b`."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, start=1):
        row = [i]
        for j, cb in enumerate(b, start=1):
            best = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, rows[-2][j - 2] + 1)
            row.append(best)
        rows.append(row)
    return rows[-1][-1]


def known_keys() -> List[str]:
    """Every key a profile may set here."""
    return sorted({*MAPPERS, *OWN_KEYS, "executor", "extends"})


def refuse_typo(profile: Profile, key: str) -> None:
    """An unread key a few edits from a key we read is refused (one line: file:line, profile, key, suggestion)."""
    if key in COOKBOOK_UNUSED:
        return
    limit = 1 if len(key) <= 4 else TYPO_DISTANCE
    scored = sorted((edit_distance(key.lower(), known), known) for known in known_keys())
    distance, match = scored[0]
    if distance <= limit:
        raise EnvFileError(
            f"{profile.where(key)}: profile {profile.name!r}: unknown key {key!r} (did you mean {match}?); "
            "fix its name (nothing was submitted)"
        )


def reserved_notes(profile: Profile) -> List[str]:
    """One note per reserved section the file has: not used here, and what does its job."""
    return [
        f"env.toml: section [{name}] is not used here ({RESERVED_USE[name]}); {profile.file.where(name)}"
        for name in RESERVED
        if name in profile.file.sections
    ]


def own_key(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """One of our cluster.* fields, set as written (the schema checks its type at compose time)."""
    node["cluster"][key] = values[key]


def to_cluster(name: str) -> Callable[..., None]:
    """A mapper that sets cluster.<name> to the key's value."""

    def mapper(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
        node["cluster"][name] = values[key]

    return mapper


def to_launcher(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """A hydra-submitit-launcher key of the same name."""
    node["hydra"]["launcher"][{"job_name": "name"}.get(key, key)] = values[key]


def sbatch_flag(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """exclusive = true: `#SBATCH --exclusive` (false sends nothing)."""
    if values[key] is True:
        node["hydra"]["launcher"].setdefault("additional_parameters", {})["exclusive"] = True
    elif values[key] is not False:
        raise EnvFileError(f"{profile.where(key)}: {key}={values[key]!r}; write true or false")


def integer(profile: Profile, key: str, low: int) -> int:
    """The profile's integer `key` (>= low), else one line at its file:line."""
    value = profile.values[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise EnvFileError(
            f"{profile.where(key)}: {key}={value!r}; write a whole number >= {low}, e.g. {key} = {max(low, 1)}"
        )
    return value


def nodes(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """nodes: what the job asks for (resources.nodes)."""
    node["resources"]["nodes"] = integer(profile, key, 1)


def gpus(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """gpus_per_node: what a node has, and what the job asks for (the recipe's runspec, at most that)."""
    node["cluster"]["gpus_per_node"] = integer(profile, key, 0)
    node["resources"]["gpus_per_node"] = "${nemotron.min:${recipe.gpus_per_node},${cluster.gpus_per_node}}"


def tasks(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """ntasks_per_node / nproc_per_node: ranks per node; equal to gpus_per_node it is already our default."""
    if integer(profile, key, 1) != values.get("gpus_per_node"):
        node["resources"]["procs_per_node"] = values[key]


def cpus(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """cpus_per_task: CPUs per rank (cluster.cpus_per_task)."""
    node["cluster"]["cpus_per_task"] = integer(profile, key, 1)


def time_limit(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """time "[D-]HH:MM:SS", "MM" or minutes -> cluster.time_limit (minutes, rounded up)."""
    value = values[key]
    found = _TIME.match(str(value).strip()) if not isinstance(value, bool) else None
    if found is None:
        raise EnvFileError(f'{profile.where(key)}: time={value!r}; write "HH:MM:SS" (e.g. "04:00:00") or minutes')
    days, hours, minutes, seconds = (int(g) if g else 0 for g in found.groups())
    if found.group(2) is None and found.group(4) is None:  # "30": minutes, as sbatch reads it
        hours, minutes = 0, int(found.group(3))
    node["cluster"]["time_limit"] = max(1, math.ceil((days * 1440 + hours * 60 + minutes) + seconds / 60))


def memory(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """mem "64G", "1T": cluster.mem_gb; anything else sbatch reads ("0" = all, "500M") goes to --mem as is."""
    found = _MEM.match(str(values[key]).strip())
    if found is None:
        raise EnvFileError(f'{profile.where(key)}: mem={values[key]!r}; write e.g. "64G", "500M" or "0" (all)')
    amount, unit = float(found.group(1)), (found.group(2) or "M").upper()
    gb = amount * {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}[unit]
    if gb >= 1 and gb == int(gb):
        node["cluster"]["mem_gb"] = int(gb)
    else:
        node["hydra"]["launcher"].setdefault("additional_parameters", {})["mem"] = str(values[key])


def image(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """container_image (or container): runs under pyxis, as the cookbook's Slurm executor does."""
    node["cluster"]["container_image"] = values[key]
    node["cluster"]["pyxis"] = True


def env_vars(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """env_vars as a table {NAME = "value"} or a list ["NAME=value"] -> cluster.env."""
    value = values[key]
    if isinstance(value, list) and all(isinstance(v, str) and "=" in v for v in value):
        value = dict(v.split("=", 1) for v in value)
    if not isinstance(value, dict):
        raise EnvFileError(
            f'{profile.where(key)}: env_vars must be a table ({{NAME = "value"}}) or a list of "NAME=value" strings'
        )
    node["cluster"]["env"] = {**node["cluster"].get("env", {}), **{k: str(v) for k, v in value.items()}}


def setup_lines(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """startup_commands (list) / setup_lines (string or list): shell lines before srun (cluster.setup)."""
    value = values[key]
    lines = value.splitlines() if isinstance(value, str) else value
    if not isinstance(lines, list) or not all(isinstance(v, str) for v in lines):
        raise EnvFileError(f"{profile.where(key)}: {key} must be a list of shell lines (or one string)")
    node["cluster"]["setup"] = [*node["cluster"].get("setup", []), *[line for line in lines if line.strip()]]


def tunnel(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """tunnel = "local" is what we do; an SSH tunnel would submit elsewhere: refused."""
    if values[key] != "local":
        raise EnvFileError(
            f"{profile.where(key)}: profile {profile.name!r}: tunnel={values[key]!r} is not supported "
            "(jobs are submitted with this machine's sbatch); run nemotron on the cluster's login node"
        )


def packager(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """packager = "none": run from the checkout (cluster.snapshot=false); any other packs the code (a snapshot)."""
    node["cluster"]["snapshot"] = values[key] != "none"


def detach(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """detach = false: wait for the job (cluster.wait), as --run does."""
    node["cluster"]["wait"] = not values[key]


def partition(values: Dict[str, Any], default: Any) -> Any:
    """partition, or run_partition while waiting (--run) / batch_partition otherwise (--batch)."""
    base = values.get("partition", default)
    run, batch = values.get("run_partition", base), values.get("batch_partition", base)
    if run == batch:
        return run
    return f"${{nemotron.by_wait:${{cluster.wait}},{quote(run)},{quote(batch)}}}"


def quote(value: Any) -> str:
    """A resolver argument: null, or a quoted string."""
    return "null" if value is None else "'" + str(value).replace("'", "\\'") + "'"


def ignore(node: Dict[str, Any], key: str, values: Dict[str, Any], profile: Profile) -> None:
    """Read by partition() at the end."""


MAPPERS: Dict[str, Callable[..., None]] = {
    "account": to_cluster("account"),
    "qos": to_cluster("qos"),
    "cpus_per_task": cpus,
    "partition": ignore,
    "run_partition": ignore,
    "batch_partition": ignore,
    "nodes": nodes,
    "gpus_per_node": gpus,
    "ntasks_per_node": tasks,
    "nproc_per_node": tasks,
    "time": time_limit,
    "mem": memory,
    "exclusive": sbatch_flag,
    "container_image": image,
    "container": image,
    "mounts": to_cluster("container_mounts"),
    "env_vars": env_vars,
    "startup_commands": setup_lines,
    "setup_lines": setup_lines,
    "job_name": to_launcher,
    **{key: to_launcher for key in LAUNCHER_KEYS},
    "tunnel": tunnel,
    "packager": packager,
    "detach": detach,
}
"""Cookbook key -> what sets it here."""
