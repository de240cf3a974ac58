"""The command line of `python -m nemotron.pipe`.

    python -m nemotron.pipe pipeline=nano3                            # every stage here, in order
    python -m nemotron.pipe pipeline=nano3 dry_run=true               # stages, diffs, commands, graph
    python -m nemotron.pipe pipeline=nano3 cluster=slurm_test         # submit all stages at once, return
    python -m nemotron.pipe pipeline=nano3 pretrain.train.steps=5 tracker=none --from sft

`<stage>.<key>=value` overrides one stage; any other `key=value` (or `group=option`) goes to every
stage. Bad input is one line naming the stage and the key, exit 2, nothing started; a failed stage
exits with its status and names its log.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from typing import List, Optional, Tuple

from nemotron.pipe.spec import PipelineError

USAGE = (
    "usage: python -m nemotron.pipe pipeline=<name> [cluster=<option>] [dry_run=true] [--from STAGE | "
    "--only STAGE] [<stage>.<key>=value ...] [<key>=value ...]"
)
FLAGS = ("--from", "--only")


def parse(argv: List[str]) -> Tuple[Optional[str], bool, dict, List[str]]:
    """(pipeline, dry_run, {--from/--only: stage}, overrides) from the arguments."""
    pipeline, dry_run, flags, rest = None, False, {}, []
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name in FLAGS:
            if not eq and not args:
                raise PipelineError(f"{name} needs a stage name ({USAGE})")
            flags[name] = value if eq else args.pop(0)
        elif name == "pipeline":
            pipeline = value
        elif name == "dry_run":
            if value.lower() not in ("true", "false"):
                raise PipelineError(f"dry_run={value}: must be true or false")
            dry_run = value.lower() == "true"
        elif arg.startswith("-"):
            raise PipelineError(f"{arg}: unknown flag ({USAGE})")
        elif not eq:
            raise PipelineError(f"{arg!r}: not key=value ({USAGE})")
        else:
            rest.append(arg)
    if len(flags) > 1:
        raise PipelineError("--from and --only exclude each other; give one")
    return pipeline, dry_run, flags, rest


def check_heads(overrides: List[str], stages: List[str]) -> None:
    """An override is `<stage>.<key>=v` or a key of the run config (`train.steps`, `cluster=...`, `hydra.*`)."""
    from nemotron.config.schema import RunConfig

    known = {f.name for f in fields(RunConfig)} | {"hydra"}
    for arg in overrides:
        head = arg.lstrip("+~").split("=", 1)[0].split(".", 1)[0]
        if head not in known and head not in stages:
            from nemotron.config.keys import closest

            raise PipelineError(
                f"{arg}: {head!r} is neither a stage nor a config key{closest(head, stages)}; "
                f"stages: {', '.join(stages)}"
            )


def run(argv: List[str]) -> int:
    from nemotron.cli.errors import recipe_names
    from nemotron.pipe import spec
    from nemotron.pipe.plan import plan_all

    pipeline, dry_run, flags, overrides = parse(argv)
    if not pipeline:
        raise PipelineError(f"no pipeline: add pipeline=<name> (available: {', '.join(spec.available())})")
    pipe = spec.load(pipeline)
    graph = spec.check(pipe, recipe_names())
    check_heads(overrides, [s.name for s in pipe.stages])
    plans = plan_all(pipe, graph, overrides)
    from nemotron.pipe import launch

    return launch.launch(pipe, graph, plans, dry_run, flags.get("--from"), flags.get("--only"), argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry: one-line errors for bad input (exit 2)."""
    from nemotron.common.paths import plugins_on_path

    plugins_on_path()
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(__doc__.strip().split("\n\n", 1)[1] if __doc__ else USAGE)
        return 0
    from nemotron.config.validate import ConfigError
    from nemotron.pipe.local import StageFailed
    from nemotron.tracking.secrets import scrub_text

    try:
        return run(args)
    except PipelineError as err:
        print(f"error: {scrub_text(str(err))}", file=sys.stderr)
        return 2
    except ConfigError as err:  # Slurm refused a stage at submission (what was submitted is recorded)
        print(f"error: {scrub_text(str(err))}", file=sys.stderr)
        return 2
    except StageFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:  # while composing or planning: nothing had started
        print("nemotron.pipe: interrupted before any stage started", file=sys.stderr)
        return 130
