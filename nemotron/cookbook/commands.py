"""The `nemotron` commands beside the cookbook's families: runs, tools and the catalog, one argparse tree.

    nemotron jobs [--last N]                     local runs and Slurm jobs: recipe, state, steps, loss
    nemotron logs RUN|JOB [-f] [-n N]            a run's log; -f follows it until the run ends
    nemotron cancel RUN|JOB                      scancel a Slurm job; stop a local run
    nemotron resubmit RUN|SWEEP|PIPELINE         resubmit what did not finish (Slurm)
    nemotron compare RUN RUN... [--plot [PNG]]   metrics side by side, config diff, one figure
    nemotron checkpoint import-hf|export-hf|...  = python -m nemotron.checkpoint ...
    nemotron pipe pipeline=NAME ...              = python -m nemotron.pipe ...
    nemotron tracking sync|compare|lineage|...   = python -m nemotron.tracking ...
    nemotron ui [--port 5000]                    the MLflow UI on this project's store, on 127.0.0.1
    nemotron steps list | show NAME              every recipe, what it consumes and produces
    nemotron completion bash|zsh                 a completion script for the shell

RUN is a run directory, its path under --root (`nano3/pretrain/<time>`), a unique tail of it, or a
Slurm job id. `checkpoint`, `pipe` and `tracking` hand their arguments to those modules unchanged.
Bad input is one line on stderr (closest names where there are some), exit 2.
"""

from __future__ import annotations

import argparse
import re
import runpy
import sys
from pathlib import Path
from typing import Dict, List, NoReturn, Optional, Sequence

from nemotron.cookbook.runs import near
from nemotron.launchers.job_records import JobsError

DELEGATES: Dict[str, str] = {
    "checkpoint": "nemotron.checkpoint",
    "pipe": "nemotron.pipe",
    "tracking": "nemotron.tracking",
}
"""Commands that are another module's command line: `nemotron <name> ARGS` = `python -m <module> ARGS`."""
TOOLS = ("jobs", "logs", "cancel", "resubmit", "compare", *DELEGATES, "ui", "steps", "completion")
"""Every command word here, in help order (a recipe family of the same name is shadowed)."""
SHELLS = ("bash", "zsh")
CHOICE = re.compile(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `nemotron <cmd>: error: ...` (closest names for a bad choice)."""

    def error(self, message: str) -> NoReturn:
        match = CHOICE.match(message)
        if match:
            choices = [c.strip(" '") for c in match.group(3).split(",")]
            word, what = match.group(2), "command" if match.group(1) in ("command", "action") else "choice"
            message = f"{word}: unknown {what}{near(word, choices)}; available: {', '.join(choices)}"
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def root_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, default=Path("outputs"), help="the runs' paths.output_root (default outputs)")


def parser() -> Parser:
    """The tree of these commands (the delegated ones carry their arguments through)."""
    top = Parser(prog="nemotron", description=__doc__.split("\n")[0], add_help=False)
    sub = top.add_subparsers(dest="command", required=True, parser_class=Parser)
    jobs = sub.add_parser("jobs", help="local runs and Slurm jobs, newest first")
    jobs.add_argument("--last", type=int, default=20, help="how many runs (default 20)")
    logs = sub.add_parser("logs", help="print a run's log (-f: follow it until the run ends)")
    logs.add_argument("target", metavar="RUN|JOB")
    logs.add_argument("-f", "--follow", action="store_true", help="follow until the run ends, then its state")
    logs.add_argument("-n", "--lines", type=int, help="only the last N lines")
    for name, what in (("cancel", "scancel a Slurm job; stop a local run"), ("resubmit", "resubmit (Slurm)")):
        sub.add_parser(name, help=what).add_argument("target", metavar="RUN|JOB|DIR")
    comp = sub.add_parser("compare", help="runs side by side: metrics, config diff, one figure")
    comp.add_argument("targets", nargs="+", metavar="RUN")
    comp.add_argument("--plot", nargs="?", const="compare.png", metavar="PNG", help="write one figure (compare.png)")
    comp.add_argument("--metric", default="loss", help="a further metric to draw (default loss)")
    for name, module in DELEGATES.items():
        d = sub.add_parser(name, help=f"= python -m {module} ...", add_help=False)
        d.add_argument("args", nargs=argparse.REMAINDER)
    ui = sub.add_parser("ui", help="the MLflow UI on this project's store (127.0.0.1)")
    ui.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    steps = sub.add_parser("steps", help="the step catalog: every recipe, what it consumes and produces")
    what = steps.add_subparsers(dest="action", required=True, parser_class=Parser)
    what.add_parser("list", help="every step")
    what.add_parser("show", help="one step").add_argument("name", metavar="NAME")
    sub.add_parser("completion", help="print a completion script").add_argument("shell", choices=SHELLS)
    for name in ("jobs", "logs", "cancel", "resubmit", "compare", "ui"):
        root_flag(sub.choices[name])
    return top


def delegate(module: str, args: Sequence[str]) -> int:
    """Run `python -m module args` in this process; its exit status."""
    saved = sys.argv
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        sys.argv = saved
    return 0


def run(args: argparse.Namespace) -> int:
    """Do one parsed command."""
    from nemotron.cookbook import actions, steps

    if args.command == "jobs":
        return actions.list_runs(args.root, args.last)
    if args.command == "logs":
        return actions.show_log(args.target, args.root, args.follow, args.lines)
    if args.command == "cancel":
        return actions.cancel(args.target, args.root)
    if args.command == "resubmit":
        return actions.resubmit(args.target, args.root)
    if args.command == "compare":
        from nemotron.cookbook.compare_runs import compare

        return compare(args.targets, args.root, args.plot, args.metric)
    if args.command == "ui":
        return actions.ui(args.root, args.port)
    if args.command == "steps":
        return steps.list_steps() if args.action == "list" else steps.show_step(args.name)
    raise JobsError(f"{args.command}: handled by nemotron.cookbook.cli")  # completion (cli.py)


def main(argv: List[str]) -> int:
    """`nemotron <command> ...` for the commands of TOOLS; bad input is one line, exit 2."""
    if argv[0] in DELEGATES:
        return delegate(DELEGATES[argv[0]], argv[1:])
    args = parser().parse_args(argv)
    try:
        return run(args)
    except JobsError as err:
        print(f"nemotron {argv[0]}: error: {err}", file=sys.stderr)
        return 2


def help_lines() -> List[str]:
    """The commands' lines of the top-level help (from this module's docstring)."""
    block = __doc__.split("\n\n")[1]
    return ["Commands:", *(line.replace("    nemotron ", "  ", 1) for line in block.splitlines())]


def is_tool(word: Optional[str]) -> bool:
    return word in TOOLS
