"""`nemotron <family> <stage> [-c NAME] [-r|-b PROFILE] [-d] [key=value ...]`: the cookbook's command line.

Every command is translated to the argv of the Hydra app and runs it in this process (the same
composition, validation, errors and launch as `python -m nemotron.train`); the dry run and `--help`
print that line, so the Hydra form is learnt from it:

    nemotron nano3 pretrain -c tiny --run dgx train.steps=10
    = python -m nemotron.train +recipe=nano3/pretrain/tiny cluster=dgx cluster.wait=true train.steps=10

-c NAME is `<recipe config dir>/NAME.yaml` (`+recipe=<name>/NAME`); a value with `/` or a .yaml/.yml
ending is a path (`+recipe=<name>/@<absolute path>`). -r PROFILE submits to the env.toml profile and waits,
streaming the log (`cluster=PROFILE cluster.wait=true`); -b PROFILE submits and returns (`cluster=PROFILE`);
-d adds `dry_run=true`. Everything else (overrides with `+`/`~`, `-m` sweeps, `--cfg job`) passes through.
Bad input is one line on stderr, exit 2, nothing submitted.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

from nemotron.config.keys import closest
from nemotron.config.validate import ConfigError
from nemotron.cookbook import commands
from nemotron.cookbook import help as helptext
from nemotron.cookbook.envfile import ENV_FILE_VAR, current_env_file
from nemotron.cookbook.profile import cluster_option
from nemotron.cookbook.tree import Command, Node, build_tree, model_option
from nemotron.runspec.parser import RunspecError
from nemotron.runspec.source import RecipeConfigError, config_files
from nemotron.tracking.secrets import scrub_text

HELP = ("-h", "--help")
UNSUPPORTED = {
    "--stage": "staging files on the cluster for an interactive shell is not supported here; -d prints "
    "the exact job script, and -r streams the job's log"
}
"""Cookbook flags with no counterpart: one line instead of Hydra's usage text."""
VALUE_FLAGS = {"-c": "config", "--config": "config", "-r": "run", "--run": "run", "-b": "batch", "--batch": "batch"}


@dataclass
class Options:
    """The cookbook flags of one command line, and everything passed through to the Hydra app."""

    config: Optional[str] = None
    run: Optional[str] = None
    batch: Optional[str] = None
    dry_run: bool = False
    help: bool = False
    rest: List[str] = field(default_factory=list)

    @property
    def profile(self) -> Optional[str]:
        """The env.toml profile named by --run or --batch."""
        return self.run or self.batch


def parse_options(args: Sequence[str]) -> Options:
    """Split the cookbook flags (also `--flag=value`) from what goes to Hydra unchanged."""
    opts, i = Options(), 0
    while i < len(args):
        arg = args[i]
        flag, eq, value = arg.partition("=")
        if flag in VALUE_FLAGS and arg.startswith("-"):
            if not eq:
                if i + 1 >= len(args):
                    raise ConfigError(f"{flag} needs a value ({VALUE_FLAGS[flag]} name)")
                i, value = i + 1, args[i + 1]
            setattr(opts, VALUE_FLAGS[flag], value)
        elif arg in ("-d", "--dry-run"):
            opts.dry_run = True
        elif arg in HELP:
            opts.help = True
        elif flag in UNSUPPORTED:
            raise ConfigError(f"{flag}: {UNSUPPORTED[flag]}")
        else:
            opts.rest.append(arg)
        i += 1
    if opts.run and opts.batch:
        raise ConfigError("--run and --batch cannot both be given: --run waits for the job, --batch returns")
    return opts


def find_command(tree: Node, words: Sequence[str], prefix: Sequence[str] = ()) -> tuple[Node, List[str], int]:
    """(the node the leading words select, those words, how many were used); unknown words are one line.
    `prefix`: the words that selected `tree` (for the message)."""
    node, used = tree, list(prefix)
    for word in words:
        if node.command is not None or word.startswith("-") or "=" in word:
            break
        if word not in node.children:
            names = sorted(node.children) if used else sorted({*node.children, *commands.TOOLS})
            where = " ".join(["nemotron", *used])
            what = "family" if not used else "command"
            raise ConfigError(
                f"{where} {word}: unknown {what}{closest(word, names)}; available: {', '.join(names) or '(none)'}"
            )
        node, used = node.children[word], [*used, word]
    return node, used, len(used) - len(prefix)


def recipe_argument(command: Command, config: Optional[str]) -> str:
    """`+recipe=<name>`, `+recipe=<name>/<config>` or `+recipe=<name>/@<path>` for -c."""
    spec = command.recipe
    if config is None:
        return f"+recipe={spec.name}"
    if "/" in config or config.endswith((".yaml", ".yml")):
        path = Path(config).expanduser().absolute()
        if not path.is_file():
            raise ConfigError(f"-c {config}: no such file ({path})")
        return f"+recipe={spec.name}/@{path.with_suffix('')}"
    names = [p.stem for p in config_files(spec)]
    if config not in names:
        raise ConfigError(
            f"-c {config}: no config {config!r} in {spec.config_dir}{closest(config, names)}; "
            f"configs: {', '.join(names) or '(none)'}"
        )
    return f"+recipe={spec.name}/{config}"


def profile_arguments(opts: Options) -> List[str]:
    """`cluster=<profile>` (+ `cluster.wait=true` for --run); the profile is checked here first."""
    if not opts.profile:
        return []
    env = current_env_file()
    if env is None:
        raise ConfigError(
            f"--{'run' if opts.run else 'batch'} {opts.profile}: no env.toml found (searched from "
            f"{Path.cwd()} up to the project root; or set ${ENV_FILE_VAR})"
        )
    profile = env.resolve(opts.profile)
    cluster_option(profile)  # a bad value (time, mem, executor) is one line now, before Hydra starts
    args = [f"cluster={opts.profile}"]
    if opts.run:
        args.append("cluster.wait=true")
    elif "detach" in profile.values:
        args.append("cluster.wait=false")
    return args


def hydra_argv(command: Command, opts: Options) -> List[str]:
    """The Hydra app's argv for a command line (without the dry-run switch)."""
    first = [recipe_argument(command, opts.config)] if command.recipe is not None else []
    if command.recipe is None and opts.config:
        raise ConfigError(f"-c {opts.config}: `{' '.join(command.words)}` takes no recipe config")
    return [*first, *fixed_overrides(command, opts.config), *profile_arguments(opts), *opts.rest]


def fixed_overrides(command: Command, config: Optional[str]) -> List[str]:
    """The command's own overrides; shared data prep with `-c NAME` takes the model of its family recipe's
    NAME config (`nemotron nano3 data prep sft -c default`: model=nano3, the full-scale sequence length)."""
    model = model_option(command.model_from, config) if config and command.model_from else None
    if model is None:
        return list(command.overrides)
    return [f"model={model}" if o.startswith("model=") else o for o in command.overrides]


def hydra_line(command: Command, argv: Sequence[str]) -> str:
    """`python -m nemotron.train ...`, quoted for a shell."""
    return " ".join(["python", "-m", command.module, *map(shlex.quote, argv)])


def run_app(command: Command, argv: List[str]) -> int:
    """Run the Hydra app in this process with `argv`; its exit status."""
    import runpy

    sys.argv = [command.module, *argv]
    try:
        runpy.run_module(command.module, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def dispatch(args: Sequence[str]) -> int:
    """Resolve the words, print help or the Hydra line, run the app."""
    if args and args[0] == "completion":
        from nemotron.cookbook import completion

        return completion.main(list(args[1:]))
    if args and commands.is_tool(args[0]):
        return commands.main(list(args))
    tree = build_tree()
    node, words, used = find_command(tree, args)
    opts = parse_options(args[used:])
    if node.command is None:
        extra = [a for a in opts.rest if not a.startswith("-")]
        if extra:
            find_command(node, extra, words)  # names the unknown word
        print(helptext.group_help(node, words))
        return 0
    if opts.help:
        line = scrub_text(hydra_line(node.command, hydra_argv(node.command, opts)))
        print(helptext.command_help(node.command, line))
        return 0
    argv = hydra_argv(node.command, opts)
    print(f"# = {scrub_text(hydra_line(node.command, argv))}", file=sys.stderr, flush=True)
    return run_app(node.command, [*argv, "dry_run=true"] if opts.dry_run else argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry `nemotron`: one line on stderr and exit 2 for bad input."""
    try:
        code = dispatch(list(sys.argv[1:] if argv is None else argv))
    except (ConfigError, RunspecError, RecipeConfigError) as err:  # bad input: one line, no traceback
        print(f"nemotron: error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code)


if __name__ == "__main__":
    main()
