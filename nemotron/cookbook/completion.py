"""Shell completion for `nemotron` (bash, zsh), and the command surface the tests freeze.

    eval "$(nemotron completion bash)"      # in ~/.bashrc
    source <(nemotron completion zsh)       # in ~/.zshrc, after compinit

The scripts are small: on TAB they call `nemotron completion --words <shell> <words so far>`, which
answers from the same trees the commands run: the argparse tree of commands.py (and the parsers of
the modules `checkpoint` and `tracking` hand over to), the cookbook tree of the recipes (families,
stages, `-c` config names, env.toml profiles for `-r/-b`) and the run names under `outputs/` for
RUN arguments. No dependency beyond the standard library (argcomplete would need its own hook in the
entry point and still know nothing of the recipe tree).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Iterator, List, Tuple

from nemotron.cookbook import commands
from nemotron.cookbook.help import FLAG_NAMES
from nemotron.cookbook.tree import Node, build_tree

BASH = """\
# nemotron completion for bash: eval "$(nemotron completion bash)"
_nemotron_complete() {
    local IFS=$'\\n'
    COMPREPLY=($(nemotron completion --words bash "${COMP_LINE:0:$COMP_POINT}" 2>/dev/null))
}
complete -o default -o nospace -F _nemotron_complete nemotron"""
ZSH = """\
# nemotron completion for zsh: source <(nemotron completion zsh)   (after compinit)
_nemotron_complete() {
    local -a found
    found=("${(@f)$(nemotron completion --words zsh "${(j: :)${(@q)words[1,CURRENT]}}" 2>/dev/null)}")
    compadd -- "${found[@]}"
}
compdef _nemotron_complete nemotron"""
PIPE_WORDS = ("pipeline=", "dry_run=true", "--from", "--only", "-h")


def main(argv: List[str]) -> int:
    """`nemotron completion bash|zsh` prints a script; `--words SHELL LINE` is what it calls on TAB."""
    if argv and argv[0] == "--words":
        print("\n".join(candidates(argv[1:])))
        return 0
    args = commands.parser().parse_args(["completion", *argv])
    print(BASH if args.shell == "bash" else ZSH)
    return 0


def delegate_parser(word: str) -> argparse.ArgumentParser | None:
    """The argparse tree of the module `nemotron <word>` hands over to (pipe has none)."""
    if word == "checkpoint":
        from nemotron.hf.cli import parser

        return parser()
    if word == "tracking":
        from nemotron.tracking.cli import parser

        return parser()
    return None


def subcommands(p: argparse.ArgumentParser) -> dict:
    for action in p._actions:  # argparse keeps no public list of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(p: argparse.ArgumentParser) -> List[str]:
    return sorted(s for a in p._actions for s in a.option_strings)


def positionals(p: argparse.ArgumentParser) -> List[str]:
    return [
        a.metavar or a.dest.upper()
        for a in p._actions
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction) and a.nargs != argparse.REMAINDER
    ]


def walk(
    p: argparse.ArgumentParser, words: Tuple[str, ...]
) -> Iterator[Tuple[Tuple[str, ...], argparse.ArgumentParser]]:
    """(words, parser) of every command below `p`, depth first, in name order."""
    subs = subcommands(p)
    if not subs or options(p) or positionals(p):
        yield words, p
    for name, child in sorted(subs.items()):
        yield from walk(child, (*words, name))


def surface() -> List[str]:
    """One line per command of the tree: its words, positional arguments and every flag."""
    lines = []
    for name, child in sorted(subcommands(commands.parser()).items()):
        inner = delegate_parser(name)
        if name == "pipe":
            lines.append(f"nemotron pipe  {' '.join(sorted(PIPE_WORDS))}")
            continue
        for words, p in walk(inner or child, (name,)):
            args = " ".join([*positionals(p), *options(p)])
            lines.append(f"nemotron {' '.join(words)}  {args}".rstrip())
    lines.append(f"nemotron <family> <stage>  {' '.join(sorted(FLAG_NAMES))} key=value")
    return lines


def split_line(line: str) -> List[str]:
    """The words of a partial command line; the last is the word being completed ('' after a space)."""
    try:
        words = shlex.split(line)
    except ValueError:  # an open quote
        words = line.split()
    if not line or line[-1].isspace():
        words.append("")
    return words[1:] or [""]


def candidates(argv: List[str]) -> List[str]:
    """What may come next: argv is [shell, line] from the scripts (or the words themselves)."""
    shell, words = (argv[0], split_line(argv[1])) if len(argv) == 2 and argv[0] in commands.SHELLS else ("", argv)
    words = words or [""]
    before, cur = words[:-1], words[-1]
    found = sorted({w for w in next_words(before, cur) if w.startswith(cur)})
    if shell == "bash" and "=" in cur:  # bash completes the part after '=' (COMP_WORDBREAKS)
        found = [w.split("=", 1)[1] if "=" in w else w for w in found]
    if shell == "bash":  # -o nospace: a finished word gets its space here, `key=` and `dir/` do not
        found = [w if w.endswith(("=", "/")) else w + " " for w in found]
    return found


def next_words(before: List[str], cur: str) -> List[str]:
    tree = build_tree()
    if not before:
        return [*commands.TOOLS, *tree.children, "-h", "--help"]
    if before[0] == "pipe":
        from nemotron.pipe.spec import available

        return [*PIPE_WORDS, *(f"pipeline={n}" for n in available())] if cur.startswith("pipeline=") else [*PIPE_WORDS]
    if commands.is_tool(before[0]):
        return tool_words(before)
    return cookbook_words(tree, before)


def tool_words(before: List[str]) -> List[str]:
    p = delegate_parser(before[0]) or commands.parser()
    words = before[1:] if delegate_parser(before[0]) else before
    for word in words:
        child = subcommands(p).get(word)
        if child is not None:
            p = child
    subs = subcommands(p)
    if subs:
        return list(subs)
    if p.prog.endswith(("steps show",)):
        return recipe_names()
    if p.prog.endswith(("completion",)):
        return list(commands.SHELLS)
    if positionals(p) and p.prog.split()[-1] in ("logs", "cancel", "resubmit", "compare"):
        root = before[before.index("--root") + 1] if "--root" in before[:-1] else "outputs"
        return [*run_names(Path(root)), *options(p)]
    return options(p)


def cookbook_words(tree: Node, before: List[str]) -> List[str]:
    node = tree
    for word in before:
        if word.startswith("-") or "=" in word or word not in node.children:
            break
        node = node.children[word]
    if node.command is None:
        return list(node.children)
    if before[-1] in ("-c", "--config") and node.command.recipe is not None:
        from nemotron.runspec.source import config_files

        return [p.stem for p in config_files(node.command.recipe)]
    if before[-1] in ("-r", "--run", "-b", "--batch"):
        from nemotron.cookbook.envfile import current_env_file

        env = current_env_file()
        return env.profiles() if env is not None else []
    return list(FLAG_NAMES)


def recipe_names() -> List[str]:
    from nemotron.cookbook.tree import recipes

    return sorted(recipes())


def run_names(root: Path) -> List[str]:
    from nemotron.cookbook.runs import run_dirs

    return [str(d.relative_to(root)) for d in run_dirs(root)] if root.is_dir() else []
