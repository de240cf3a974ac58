"""Run many command lines of one form in ONE process and print {label: stdout} as JSON (keeps tests cheap).

    python tests/cli/cookbook_forms.py cookbook '[["gpt", "pretrain", "--cfg", "job"], ...]'
    python tests/cli/cookbook_forms.py hydra '[["+recipe=gpt/pretrain", "--cfg", "job"], ...]'

`cookbook` runs `nemotron ARGS` (nemotron.cookbook.cli.dispatch); `hydra` runs `python -m nemotron.train ARGS`
exactly as the interpreter does (runpy, as __main__). Each entry's stderr is kept too, and its exit code.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys


def run_hydra(args: list) -> int:
    """`python -m nemotron.train ARGS` in this process."""
    sys.argv = ["nemotron.train", *args]
    try:
        runpy.run_module("nemotron.train", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def run_cookbook(args: list) -> int:
    """`nemotron ARGS` in this process."""
    from nemotron.cookbook.cli import dispatch

    return dispatch(args)


def main() -> None:
    form, lines = sys.argv[1], json.loads(sys.argv[2])
    sys.path[0] = os.getcwd()  # as `python -m` has it: the working directory first, not this script's folder
    runner = run_cookbook if form == "cookbook" else run_hydra
    results = []
    for args in lines:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = runner(list(args))
        results.append({"args": args, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
