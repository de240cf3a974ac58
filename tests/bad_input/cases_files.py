"""Bad files: runspec blocks of recipe scripts and YAML configs, written per case under the suite's root.

A case's files are written under `{root}/<case dir>`; `{root}` in its arguments and environment is that
directory (tests/bad_input/case.py). Recipes are found through $NEMOTRON_RECIPE_PATH.
"""

from __future__ import annotations

from typing import Dict

from case import Case

RECIPES = {"NEMOTRON_RECIPE_PATH": "{root}/recipes"}


def runspec(body: str, doc: str = "A fixture recipe with a bad runspec.") -> str:
    lines = "\n".join(f"# {line}".rstrip() for line in body.strip().splitlines())
    return f'"""{doc}"""\n# /// script\n{lines}\n# ///\n'


GOOD_HEAD = '[tool.runspec]\nschema = "1"\nname = "fixture/bad"\n'

RUNSPECS: Dict[str, tuple] = {
    # case: (runspec body, what the one line names)
    "unterminated string": ('[tool.runspec]\nname = "fixture/bad\n', "train.py:"),
    "schema 2": ('[tool.runspec]\nschema = "2"\nname = "fixture/bad"\n', "schema"),
    "unknown launch": (GOOD_HEAD + '\n[tool.runspec.run]\nlaunch = "slurm-magic"\n', "tool.runspec.run.launch"),
    "nodes as a word": (GOOD_HEAD + '\n[tool.runspec.resources]\nnodes = "two"\n', "tool.runspec.resources.nodes"),
    "negative gpus": (GOOD_HEAD + "\n[tool.runspec.resources]\ngpus_per_node = -1\n", "gpus_per_node"),
    "unknown table key": (GOOD_HEAD + '\n[tool.runspec.run]\nlauncher = "torchrun"\n', "launcher"),
    "missing config dir": (
        GOOD_HEAD + '\n[tool.runspec.config]\ndir = "./nope"\ndefault = "default"\n',
        "tool.runspec.config.dir",
    ),
    "env value not a string": (GOOD_HEAD + "\n[tool.runspec.env]\nOMP_NUM_THREADS = [1, 2]\n", "OMP_NUM_THREADS"),
}

WITH_CONFIG = GOOD_HEAD + '\n[tool.runspec.config]\ndir = "./config"\ndefault = "default"\n'

YAMLS: Dict[str, tuple] = {
    # case: (the recipe's config/default.yaml, what the one line names)
    "malformed yaml": ("train:\n  steps: 2\n   seed: 64\n", "recipes/bad/config/default.yaml:3: not valid YAML"),
    "a group key in yaml": ("model:\n  num_layers: 2\n", "key 'model' is owned by the 'model' group"),
    "unknown key in yaml": ("train:\n  stepz: 2\n", "stepz"),
    "wrong type in yaml": ("train:\n  steps: many\n", "train.steps"),
    "default of a missing option": ("defaults:\n  - override /model: nope\n", "nope"),
}


def _cases():
    for name, (body, expect) in RUNSPECS.items():
        files = {"recipes/bad/train.py": runspec(body)}
        yield Case(f"runspec: {name}", ("+recipe=fixture/bad",), expect, env=RECIPES, files=files)
    for name, (yaml, expect) in YAMLS.items():
        files = {"recipes/bad/train.py": runspec(WITH_CONFIG), "recipes/bad/config/default.yaml": yaml}
        yield Case(f"yaml: {name}", ("+recipe=fixture/bad",), expect, env=RECIPES, files=files)
    user_dir = ("--config-dir", "{root}/conf", "+recipe=gpt/pretrain")
    yield Case(
        "yaml: a broken model option in --config-dir",
        (*user_dir, "model=broken"),
        "conf/model/broken.yaml:3:1: not valid YAML",
        files={"conf/model/broken.yaml": "arch: gpt\nnum_layers: [2\n"},
    )
    yield Case(
        "yaml: an option in --config-dir with a typo",
        (*user_dir, "model=typo"),
        "num_layrs",
        files={"conf/model/typo.yaml": "arch: gpt\nnum_layrs: 2\n"},
    )


CASES = list(_cases())
