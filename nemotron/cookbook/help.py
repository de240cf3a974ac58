"""`--help` of the `nemotron` command at every level: what exists, derived from the recipes and env.toml."""

from __future__ import annotations

from typing import List, Sequence

from nemotron.cookbook.envfile import current_env_file
from nemotron.cookbook.source import shipped_options
from nemotron.cookbook.tree import Command, Node
from nemotron.runspec.source import config_files

FLAG_NAMES = ("-c", "--config", "-r", "--run", "-b", "--batch", "-d", "--dry-run", "-h", "--help")
"""The flags of every recipe command (cli.py parses them; completion offers them)."""
FLAGS = """\
  -c, --config NAME|PATH   a config in the recipe's config dir (or a file)   -> +recipe=<name>/NAME
  -r, --run PROFILE        submit to an env.toml profile, wait, stream the log -> cluster=PROFILE cluster.wait=true
  -b, --batch PROFILE      submit to an env.toml profile and return          -> cluster=PROFILE
  -d, --dry-run            print the resolved config and the job, run nothing -> dry_run=true
  key=value, +key=v, ~key  overrides, in Hydra's grammar (passed through)
  -m key=a,b               a sweep (Hydra's multirun; passed through)
  --cfg job                print the composed config (Hydra's flag; -c is the cookbook's --config here)"""


def group_help(node: Node, words: Sequence[str]) -> str:
    """Usage and the commands below a group of words (the top level lists families)."""
    prefix = " ".join(["nemotron", *words])
    lines = [f"Usage: {prefix} <{'family' if not words else 'command'}> ... [flags] [key=value ...]", ""]
    lines.append("Families:" if not words else "Commands:")
    width = max((len(w) for w in node.children), default=0) + 2
    for word, child in sorted(node.children.items()):
        lines.append(f"  {word:<{width}}{describe(child)}")
    if not node.children:
        lines.append("  (none: no recipe has a runspec block on the recipe path)")
    lines += ["", "Flags of every command:", FLAGS, "", *profile_lines()]
    if not words:
        from nemotron.cookbook.commands import help_lines

        lines += [*help_lines(), ""]
    lines.append("Each command is a call of `python -m nemotron.train`; its --help and dry run print that line.")
    return "\n".join(lines)


def describe(node: Node) -> str:
    """A command's summary, or the words below a group."""
    if node.command is not None:
        return node.command.summary
    return ", ".join(sorted(node.children))


def command_help(command: Command, hydra_line: str) -> str:
    """Usage of one command: its recipe, its configs, the profiles and its Hydra form."""
    words = " ".join(command.words)
    lines = [
        f"Usage: nemotron {words} [-c NAME|PATH] [-r|-b PROFILE] [-d] [key=value ...]",
        "",
        f"  {command.summary}",
        "",
    ]
    if command.recipe is not None:
        spec = command.recipe
        lines += [
            f"Recipe: {spec.name} ({spec.script}; {spec.launch}, {spec.nodes} node(s) x {spec.gpus_per_node} GPUs)",
            f"Configs (-c, in {spec.config_dir}): "
            f"{', '.join(p.stem for p in config_files(spec)) or '(none)'} (default: {spec.config_default})",
        ]
    lines += ["", "Flags:", FLAGS, "", *profile_lines()]
    lines += ["The same run, in the Hydra app's own form:", f"  {hydra_line}"]
    return "\n".join(lines)


def profile_lines() -> List[str]:
    """'Profiles (env.toml at <path>): a, b' (or why there are none), then a blank line."""
    try:
        env = current_env_file()
    except ValueError as err:  # a broken env.toml: say so in the help rather than fail
        return [f"Profiles: env.toml cannot be read: {err}", ""]
    if env is None:
        return [
            "Profiles: no env.toml here (searched up to the project root; or set $NEMOTRON_ENV_FILE)",
            f"Shipped cluster options (cluster=...): {', '.join(shipped_options())}",
            "",
        ]
    names = env.profiles()
    shadow = [n for n in names if n in shipped_options()]
    note = f" ({', '.join(shadow)} shadow the shipped option(s) of that name)" if shadow else ""
    return [
        f"Profiles (-r/-b, or cluster=<profile>; {env.path}): {', '.join(names) or '(none)'}{note}",
        f"Shipped cluster options (cluster=...): {', '.join(shipped_options())}",
        "",
    ]
