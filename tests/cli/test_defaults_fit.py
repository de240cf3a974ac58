"""Defaults that fit together: every shipped recipe passes a dry run on every shipped cluster option,
and every `python -m nemotron.train` command in README.md and docs/quickstart.md works as printed
(as a dry run: the ones that train or submit run elsewhere, e.g. tests/cli/test_main_job.py).

Each command is a real `python -m nemotron.train` process; they run two at a time (module fixtures).
A recipe that starts from another run's checkpoint gets `checkpoint.pretrained=null` in the matrix
(on a fresh output root there is none; test_compose_all checks the one line that says so).
"""

from __future__ import annotations

import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cli_support import run_cli

from nemotron.common.paths import CONF_DIR, RECIPES_DIR
from nemotron.config.compose import compose_run
from nemotron.runspec.parser import discover

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted(discover([RECIPES_DIR]))
CLUSTERS = sorted(p.stem for p in CONF_DIR.glob("cluster/*.yaml"))
DOCS = [REPO / "README.md", REPO / "docs" / "quickstart.md"]
COMMAND = re.compile(r"^(?:\$ )?python -m nemotron\.train\b(.*)$")
PRINTS_ONLY = {"--help", "--cfg", "--info", "dry_run=true"}
EXPECTED_ON_A_FRESH_CLONE = {
    # a documented command that needs something the user brings or makes first: the one line it gives
    "YOUR_TOKENIZER.json": "error: data.tokenizer_path=YOUR_TOKENIZER.json: no such file",  # then data.sources
    "+recipe=nano3/sft": "error: checkpoint.pretrained=newest:nano3/pretrain: no complete checkpoint",
    "+recipe=gpt/dpo": "error: checkpoint.pretrained=newest:gpt/sft|gpt/pretrain: no complete checkpoint",
}
"""A `$ python -m ...` line followed by an `error:` line in the docs shows a mistake: that line must be exact."""


def starts_from_a_checkpoint(recipe: str, root: Path) -> bool:
    cfg = compose_run([f"+recipe={recipe}", f"paths.output_root={root}"], run_dir=root / "probe", with_hydra=True)
    return str(cfg.checkpoint.get("pretrained") or "").startswith("newest:")


def run_all(commands: dict, root: Path) -> dict:
    def one(item):
        name, args = item
        out = root / re.sub(r"\W+", "_", name)
        return name, run_cli(f"paths.output_root={out}", f"paths.cache_dir={root / 'cache'}", *args, timeout=180)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, commands.items()))


CHAT_PREPS = ("data/prep_sft", "data/prep_dpo")
"""Recipes that tokenize chats with the model's own tokenizer: the user names it (and the chats)."""


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, word_tokenizer):
    root = tmp_path_factory.mktemp("matrix")
    commands = {}
    for recipe in RECIPES:
        extra = ["checkpoint.pretrained=null"] if starts_from_a_checkpoint(recipe, root / "empty") else []
        if recipe in CHAT_PREPS:
            extra = ["data.generate_tiny=true", f"data.tokenizer_path={word_tokenizer}"]
        for cluster in CLUSTERS:
            args = [f"+recipe={recipe}", f"cluster={cluster}", "dry_run=true", *extra]
            commands[f"{recipe} cluster={cluster}"] = args
    return run_all(commands, root)


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_every_recipe_passes_a_dry_run_on_every_cluster_option(matrix, recipe, cluster):
    result = matrix[f"{recipe} cluster={cluster}"]
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "error:" not in result.stderr


def documented_commands() -> tuple:
    """{'file:line': the command's arguments (comments dropped)}, {'file:line': the error line shown after it}."""
    found, shown = {}, {}
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        for num, line in enumerate(lines, 1):
            match = COMMAND.match(line.strip())
            if match:
                where = f"{doc.relative_to(REPO)}:{num}"
                found[where] = shlex.split(match.group(1), comments=True)
                if line.startswith("$ ") and num < len(lines) and lines[num].startswith("error: "):
                    shown[where] = lines[num]
    return found, shown


DOCUMENTED, SHOWN_ERRORS = documented_commands()


@pytest.fixture(scope="module")
def documented(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    as_dry_runs = {}
    for where, args in DOCUMENTED.items():
        prints = PRINTS_ONLY.intersection(a.split("=")[0] if a.startswith("-") else a for a in args)
        as_dry_runs[where] = args if prints else [*args, "dry_run=true"]
    return run_all(as_dry_runs, root)


def test_the_docs_show_commands():
    assert len(DOCUMENTED) >= 10 and any("+recipe=nano3/pretrain" in a for a in DOCUMENTED.values())


@pytest.mark.parametrize("where", sorted(DOCUMENTED))
def test_every_documented_command_works_as_printed(documented, where):
    result, line = documented[where], " ".join(DOCUMENTED[where])
    expected = [msg for marker, msg in EXPECTED_ON_A_FRESH_CLONE.items() if marker in line]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    if where in SHOWN_ERRORS:
        assert result.returncode == 2 and result.stderr.strip() == SHOWN_ERRORS[where]
    elif expected:
        assert result.returncode == 2 and result.stderr.startswith(expected[0]), result.stderr[-2000:]
        brought = len(re.findall(r"YOUR_\w+", line)) or 1  # one line for each thing the user brings
        assert len(result.stderr.strip().splitlines()) == brought, result.stderr
    else:
        assert result.returncode == 0, f"{where}: {line}\n{result.stderr[-2000:]}"
