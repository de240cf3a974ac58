"""The cookbook's command tree, derived from the recipes' runspec blocks (nothing is listed by hand).

- A recipe named `<family>/<stage>` (e.g. `nano3/pretrain`, `gpt/rl`) is `nemotron <family> <stage>`;
  deeper names add words (`a/b/c` is `nemotron a b c`).
- The shared data recipes `data/prep` and `data/prep_<kind>` are `nemotron <family> data prep pretrain`
  and `... data prep <kind>` under every family, with the model option of the family's `<family>/<kind>`
  recipe (so the data is cut for that model's sequence length; with `-c NAME`, that recipe's NAME config's:
  `-c default` prepares for the full-scale model); a family's own `<family>/data/prep/<kind>`
  recipe takes the place of the shared one. Any other `data/<x>` recipe is `nemotron <family> data <x>`.
- `nemotron <family> pipe`: the hook for pipelines (issue 12). It appears only when the pipeline module
  `nemotron.pipe` exists and `conf/pipeline/<family>.yaml` does; it then runs
  `python -m nemotron.pipe pipeline=<family> ...`.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from nemotron.common.paths import CONF_DIR, recipe_roots
from nemotron.runspec.parser import Runspec, discover
from nemotron.runspec.source import RecipeConfigError, config_file_at, load_recipe_config

DATA = "data"
PIPE_MODULE = "nemotron.pipe"
"""The pipeline entry point `nemotron <family> pipe` calls once it exists (issue 12)."""


@dataclass(frozen=True)
class Command:
    """One leaf of the tree: the words that select it and the Hydra call it is."""

    words: Tuple[str, ...]
    """e.g. ("nano3", "data", "prep", "sft")."""
    module: str = "nemotron.train"
    """The Hydra app it runs (`python -m <module>`)."""
    recipe: Optional[Runspec] = None
    """The recipe it runs (None for a pipeline)."""
    overrides: Tuple[str, ...] = ()
    """Overrides it always adds (the family's model option for shared data prep; pipeline=<family>)."""
    model_from: Optional[Runspec] = None
    """Shared data prep: the family recipe whose config (`-c NAME`'s, else its default) names the model."""
    summary: str = ""
    """One line for --help."""


@dataclass
class Node:
    """A word of the tree: either a command or a group of further words."""

    command: Optional[Command] = None
    children: Dict[str, "Node"] = field(default_factory=dict)

    def add(self, command: Command, depth: int = 0) -> None:
        """Insert `command` under its words (an existing command at the same words is kept)."""
        if depth == len(command.words):
            self.command = self.command or command
            return
        self.children.setdefault(command.words[depth], Node()).add(command, depth + 1)


def recipes() -> Dict[str, Runspec]:
    """Every recipe on the recipe roots (the shipped recipes/ and $NEMOTRON_RECIPE_PATH), by name."""
    return discover([root for root in recipe_roots() if root.is_dir()])


def build_tree(found: Optional[Dict[str, Runspec]] = None) -> Node:
    """The whole tree: own recipes first, then shared data prep under each family, then pipelines."""
    found = recipes() if found is None else found
    root = Node()
    shared = {n: s for n, s in found.items() if n.split("/")[0] == DATA}
    for name, spec in found.items():
        if name not in shared:
            root.add(Command(words=tuple(name.split("/")), recipe=spec, summary=summary(spec)))
    for family in families(found):
        for name, spec in shared.items():
            words, extra = data_words(family, name, found)
            source = found.get(f"{family}/{words[3]}") if words[2:3] == ("prep",) else None
            root.add(Command(words=words, recipe=spec, overrides=extra, model_from=source, summary=summary(spec)))
        pipe = pipeline_command(family)
        if pipe is not None:
            root.add(pipe)
    return root


def families(found: Dict[str, Runspec]) -> List[str]:
    """First words of the recipes that are not shared data recipes."""
    return sorted({n.split("/")[0] for n in found if "/" in n and n.split("/")[0] != DATA})


def data_words(family: str, name: str, found: Dict[str, Runspec]) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """(words, overrides) of a shared data recipe under `family`: data/prep_sft -> (family data prep sft)."""
    rest = name.split("/")[1:]
    if rest and (rest[0] == "prep" or rest[0].startswith("prep_")):
        kind = rest[0][len("prep_") :] if rest[0] != "prep" else "pretrain"
        model = model_option(found.get(f"{family}/{kind}"))
        return (family, DATA, "prep", kind, *rest[1:]), (f"model={model}",) if model else ()
    return (family, DATA, *rest), ()


def model_option(spec: Optional[Runspec], config: Optional[str] = None) -> Optional[str]:
    """The `override /model: X` of a recipe's own config (the one named `config` when it has it, else its
    default), or None."""
    if spec is None:
        return None
    try:
        own = load_recipe_config(spec, config_file_at(spec, config) if config else None)
    except RecipeConfigError:  # reported when that recipe runs; the tree (and --help) still works
        return None
    for entry in own.get("defaults", []):
        if isinstance(entry, dict):
            for key, value in entry.items():
                if key.replace("override", "").strip().lstrip("/") == "model":
                    return str(value)
    return None


def pipeline_command(family: str) -> Optional[Command]:
    """`<family> pipe` once pipelines exist (the module and conf/pipeline/<family>.yaml); else None."""
    if not (CONF_DIR / "pipeline" / f"{family}.yaml").is_file() or importlib.util.find_spec(PIPE_MODULE) is None:
        return None
    return Command(
        words=(family, "pipe"),
        module=PIPE_MODULE,
        overrides=(f"pipeline={family}",),
        summary=f"the {family} pipeline (conf/pipeline/{family}.yaml), every stage in order",
    )


def summary(spec: Runspec) -> str:
    """The first line of the recipe script's docstring (its own description)."""
    try:
        doc = ast.get_docstring(ast.parse(spec.script.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError):
        doc = ""
    return doc.strip().splitlines()[0] if doc.strip() else spec.name
