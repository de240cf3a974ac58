"""Shared fixtures: composing configs the way the CLI does, and running the CLI as a subprocess; and a
garbage collection whenever in-process training has left the session too many threads."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest
from cli_support import run_cli

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURE_RECIPES = TESTS / "fixtures" / "recipes"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


THREAD_LIMIT = 400
"""Threads of this process above which a test's teardown runs a full garbage collection, when they also
grew by THREAD_GROWTH since the last one (what a collection cannot free, live fixtures' models, does not
trigger another). A model trained in this process keeps its process groups (gloo: 3 threads each, ~50 a
run) in reference cycles that only a collection frees, and Python runs full collections rarely with torch
loaded: the suite once gathered 5,400 threads, load averages of 200+ and most CPU in the kernel. A
collection costs 0.5-4 s here."""
THREAD_GROWTH = 150
_COLLECTED = {"runs": 0, "seconds": 0.0, "floor": 0}


def _threads() -> int:
    return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 0


@pytest.fixture(autouse=True)
def _collect_leftover_process_groups():
    yield
    if _threads() > max(THREAD_LIMIT, _COLLECTED["floor"] + THREAD_GROWTH):
        started = time.perf_counter()
        gc.collect()
        _COLLECTED["runs"] += 1
        _COLLECTED["seconds"] += time.perf_counter() - started
        _COLLECTED["floor"] = _threads()


def pytest_terminal_summary(terminalreporter):
    runs, seconds = _COLLECTED["runs"], _COLLECTED["seconds"]
    terminalreporter.write_line(f"garbage collections for leftover threads: {runs} ({seconds:.1f} s); "
                                f"threads at the end: {_threads()}")


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` (tests/gpu/) are skipped where torch sees no CUDA device."""
    marked = [item for item in items if item.get_closest_marker("gpu")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    for item in marked:
        item.add_marker(pytest.mark.skip(reason="no CUDA device"))


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """The session's MLflow server (started once)."""
    from mlflow_support import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("mlflow_server"))
    server.start_s = server.start()
    yield server
    server.stop()


@pytest.fixture
def fixture_recipes(monkeypatch):
    """Put tests/fixtures/recipes on the recipe path (after the shipped recipes)."""
    monkeypatch.setenv("NEMOTRON_RECIPE_PATH", str(FIXTURE_RECIPES))
    return FIXTURE_RECIPES


@pytest.fixture
def compose(tmp_path):
    """compose(overrides) -> the composed config, run_dir under tmp_path."""
    from nemotron.config.compose import compose_run

    def _compose(overrides=()):
        return compose_run(list(overrides), run_dir=tmp_path / "run", with_hydra=True)

    return _compose


@pytest.fixture
def cli(tmp_path):
    """cli(*args) runs the entry point with outputs under tmp_path."""

    def _cli(*args, env=None, timeout=120):
        return run_cli(f"paths.output_root={tmp_path / 'outputs'}", *args, env=env, timeout=timeout)

    return _cli


def write_word_tokenizer(path: Path) -> Path:
    """A small real `tokenizers` JSON file (word level, with the end-of-document token) at `path`."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {word: i for i, word in enumerate(["<unk>", "<|endoftext|>", "the", "a", "cat", "sat"])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="session")
def word_tokenizer(tmp_path_factory):
    """Path of a small real tokenizer file, for runs that bring their own shards."""
    return write_word_tokenizer(tmp_path_factory.mktemp("tokenizer") / "tokenizer.json")

