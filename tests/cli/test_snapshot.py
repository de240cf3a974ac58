"""nemotron.launchers.snapshot: the code a job runs is frozen at submission, with uncommitted changes recorded or refused.

Real git in temporary repositories (no mocks); one subprocess check that PYTHONPATH=<snapshot> beats the
editable install for a snapshot of this checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nemotron.config.validate import ConfigError
from nemotron.launchers.snapshot import DIFF, RECORD, code_root, job_path, take

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
CODE = {
    "nemotron/__init__.py": "",
    "nemotron/a.py": "A = 1\n",
    "recipes/gpt/train.py": "print('train')\n",
    "conf/config.yaml": "steps: 1\n",
    "pyproject.toml": "[project]\nname = 'x'\n",
    "README.md": "not code\n",
    ".gitignore": "*.log\n",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def write(root: Path, files: dict) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture
def repo(tmp_path) -> Path:
    """A committed checkout with the code paths, one file outside them, and an ignored file."""
    root = write(tmp_path / "repo", CODE)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")
    write(root, {"nemotron/debug.log": "ignored\n", "nemotron/__pycache__/a.cpython-311.pyc": "bytecode"})
    return root


def test_committed_code_copied_and_recorded(repo, tmp_path):
    snap = take(tmp_path / "run" / "code", root=repo)
    copied = sorted(str(p.relative_to(snap.path)) for p in snap.path.rglob("*") if p.is_file())
    assert copied == sorted([*(k for k in CODE if k not in ("README.md", ".gitignore")), RECORD])
    assert snap.commit == git(repo, "rev-parse", "HEAD").strip() and snap.dirty is False
    assert snap.uncommitted_files == [] and not (snap.path / DIFF).exists()
    record = json.loads((snap.path / RECORD).read_text())
    assert record["source"] == str(repo.resolve()) and record["commit"] == snap.commit
    assert record["num_files"] == snap.num_files == 5 and record["policy"] == "ship"


def test_edits_after_take_leave_snapshot_unchanged(repo, tmp_path):
    snap = take(tmp_path / "code", root=repo)
    (repo / "nemotron/a.py").write_text("A = 2\n")
    (repo / "conf/config.yaml").unlink()
    assert (snap.path / "nemotron/a.py").read_text() == "A = 1\n"
    assert (snap.path / "conf/config.yaml").read_text() == "steps: 1\n"


def test_uncommitted_and_untracked_changes_shipped_and_recorded(repo, tmp_path):
    (repo / "nemotron/a.py").write_text("A = 2\n")
    write(repo, {"recipes/gpt/new.py": "NEW = 1\n"})
    (repo / "conf/config.yaml").unlink()
    snap = take(tmp_path / "code", uncommitted="ship", root=repo)
    assert snap.dirty is True
    assert snap.uncommitted_files == ["conf/config.yaml", "nemotron/a.py", "recipes/gpt/new.py"]
    assert (snap.path / "nemotron/a.py").read_text() == "A = 2\n"
    assert (snap.path / "recipes/gpt/new.py").exists() and not (snap.path / "conf/config.yaml").exists()
    diff = (snap.path / DIFF).read_text()
    assert "+A = 2" in diff and "-steps: 1" in diff and "# untracked: recipes/gpt/new.py" in diff
    assert json.loads((snap.path / RECORD).read_text())["uncommitted_files"] == snap.uncommitted_files


def test_refuse_names_the_file_and_writes_nothing(repo, tmp_path):
    (repo / "nemotron/a.py").write_text("A = 2\n")
    dest = tmp_path / "run" / "code"
    with pytest.raises(ConfigError) as err:
        take(dest, uncommitted="refuse", root=repo)
    message = str(err.value)
    assert "1 uncommitted file" in message and "nemotron/a.py" in message
    assert "cluster.uncommitted=ship" in message and "\n" not in message
    assert not dest.exists() and not (tmp_path / "run").exists()


def test_refuse_passes_a_clean_tree_and_ignores_other_paths(repo, tmp_path):
    (repo / "README.md").write_text("edited docs\n")
    snap = take(tmp_path / "code", uncommitted="refuse", root=repo)
    assert snap.dirty is False and snap.policy == "refuse"


def test_unknown_policy_refused(repo, tmp_path):
    with pytest.raises(ConfigError, match="expected one of ship, refuse"):
        take(tmp_path / "code", uncommitted="stash", root=repo)


def test_outside_git_copies_the_package_and_code_folders(tmp_path):
    root = write(tmp_path / "site", {**CODE, "nemotron/__pycache__/a.cpython-311.pyc": "bytecode"})
    snap = take(tmp_path / "code", uncommitted="refuse", root=root)
    assert snap.commit is None and snap.dirty is None and snap.uncommitted_files == []
    assert (snap.path / "nemotron/a.py").exists() and (snap.path / "recipes/gpt/train.py").exists()
    assert not (snap.path / "nemotron/__pycache__").exists() and not (snap.path / "README.md").exists()


def test_code_ignored_by_an_enclosing_checkout_copied_as_plain_files(tmp_path):
    outer = write(tmp_path / "outer", {".gitignore": "venv/\n", "x.txt": "x\n"})
    git(outer, "init", "-q")
    site = write(outer / "venv" / "site", CODE)
    snap = take(tmp_path / "code", root=site)
    assert snap.commit is None and (snap.path / "nemotron/a.py").exists()


def test_code_in_a_subfolder_of_the_checkout(tmp_path):
    top = tmp_path / "mono"
    write(top / "sub", CODE)
    git(top, "init", "-q")
    git(top, "add", ".")
    git(top, "commit", "-q", "-m", "init")
    (top / "sub/nemotron/a.py").write_text("A = 3\n")
    snap = take(tmp_path / "code", root=top / "sub")
    assert snap.uncommitted_files == ["nemotron/a.py"] and (snap.path / "nemotron/a.py").read_text() == "A = 3\n"


def test_complete_snapshot_reused(repo, tmp_path):
    first = take(tmp_path / "code", root=repo)
    (repo / "nemotron/a.py").write_text("A = 2\n")
    again = take(tmp_path / "code", uncommitted="refuse", root=repo)
    assert again.reused and not first.reused
    assert (again.commit, again.dirty, again.created, again.policy) == (first.commit, False, first.created, "ship")
    assert (again.path / "nemotron/a.py").read_text() == "A = 1\n"


def test_job_path_maps_scripts_under_the_source_only(repo, tmp_path):
    snap = take(tmp_path / "code", root=repo)
    assert job_path(snap, repo / "recipes/gpt/train.py") == str(snap.path / "recipes/gpt/train.py")
    outside = write(tmp_path / "extra", {"recipes/mine/train.py": ""}) / "recipes/mine/train.py"
    assert job_path(snap, str(outside)) == str(outside)
    assert job_path(snap, str(repo / "README.md")) == str(repo / "README.md")  # under the source, not copied


def test_pythonpath_imports_nemotron_from_a_snapshot_of_this_checkout(tmp_path):
    snap = take(tmp_path / "code", root=code_root())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(snap.path), os.environ.get("PYTHONPATH", "")])}
    code = "import nemotron, nemotron.common.paths; print(nemotron.__file__); print(nemotron.common.paths.CONF_DIR)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [str(snap.path / "nemotron/__init__.py"), str(snap.path / "conf")]
    assert job_path(snap, code_root() / "recipes/gpt/pretrain/train.py").startswith(str(snap.path))


def test_snapshot_module_imports_standard_library_only():
    code = "import sys, nemotron.launchers.snapshot; print(sorted({'hydra', 'omegaconf', 'torch', 'yaml'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_dest_that_is_not_a_snapshot_refused(repo, tmp_path):
    write(tmp_path / "code", {"mine.txt": "keep\n"})
    with pytest.raises(ConfigError, match="exists and is not a code snapshot"):
        take(tmp_path / "code", root=repo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code", "repo"]
    assert [p.name for p in (tmp_path / "code").iterdir()] == ["mine.txt"]


def test_no_git_binary_copies_anyway(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    snap = take(tmp_path / "code", uncommitted="refuse", root=repo)
    assert (snap.commit, snap.dirty) == (None, None) and (snap.path / "nemotron/a.py").exists()


def test_empty_dest_directory_filled(repo, tmp_path):
    (tmp_path / "code").mkdir()
    assert (take(tmp_path / "code", root=repo).path / RECORD).is_file()


def test_identical_code_is_stored_once_and_linked(repo, tmp_path):
    store = tmp_path / "out" / ".code"
    first = take(tmp_path / "out" / "run1" / "code", root=repo, store=store)
    second = take(tmp_path / "out" / "run2" / "code", root=repo, store=store)
    assert not first.reused and second.reused
    assert [p.name for p in store.iterdir()] == [first.path.resolve().name]  # one entry, no temp dirs left
    for snap, run in ((first, "run1"), (second, "run2")):
        assert snap.path == tmp_path / "out" / run / "code" and snap.path.is_symlink()
        assert not os.path.isabs(os.readlink(snap.path))  # relative: holds wherever output_root is mounted
        assert (snap.path / "nemotron/a.py").read_text() == "A = 1\n"
    assert (second.commit, second.dirty) == (first.commit, False)


def test_an_uncommitted_change_gets_its_own_entry_frozen_at_take(repo, tmp_path):
    store = tmp_path / ".code"
    clean = take(tmp_path / "r1" / "code", root=repo, store=store)
    (repo / "nemotron/a.py").write_text("A = 2\n")
    dirty = take(tmp_path / "r2" / "code", root=repo, store=store)
    (repo / "nemotron/a.py").write_text("A = 3\n")
    dirtier = take(tmp_path / "r3" / "code", root=repo, store=store)
    (repo / "nemotron/new.py").write_text("")
    untracked = take(tmp_path / "r4" / "code", root=repo, store=store)
    entries = {s.path.resolve() for s in (clean, dirty, dirtier, untracked)}
    assert len(entries) == 4 and len(list(store.iterdir())) == 4
    assert [(s.path / "nemotron/a.py").read_text() for s in (clean, dirty, dirtier)] == ["A = 1\n", "A = 2\n", "A = 3\n"]
    assert dirty.uncommitted_files == ["nemotron/a.py"] and (dirty.path / DIFF).is_file()
    (repo / "nemotron/new.py").unlink()
    (repo / "nemotron/a.py").write_text("A = 2\n")
    assert take(tmp_path / "r5" / "code", root=repo, store=store).path.resolve() == dirty.path.resolve()


def test_a_linked_snapshot_is_reused_by_its_run_and_an_empty_dest_replaced(repo, tmp_path):
    (tmp_path / "run" / "code").mkdir(parents=True)
    snap = take(tmp_path / "run" / "code", root=repo, store=tmp_path / ".code")
    assert snap.path.is_symlink() and not snap.reused
    again = take(tmp_path / "run" / "code", uncommitted="refuse", root=repo, store=tmp_path / ".code")
    assert again.reused and again.created == snap.created
    write(tmp_path / "other" / "code", {"mine.txt": "keep\n"})
    with pytest.raises(ConfigError, match="exists and is not a code snapshot"):
        take(tmp_path / "other" / "code", root=repo, store=tmp_path / ".code")


def test_the_store_is_under_the_output_root_only_for_code_dirs_inside_it(tmp_path):
    from omegaconf import OmegaConf

    from nemotron.launchers.slurm import code_store_for

    cfg = OmegaConf.create({"paths": {"output_root": str(tmp_path / "outputs")}})
    assert code_store_for(cfg, tmp_path / "outputs" / "gpt" / "run" / "code") == tmp_path / "outputs" / ".code"
    assert code_store_for(cfg, tmp_path / "elsewhere" / "code") is None  # run_dir set outside: its own copy
    assert code_store_for(cfg, None) is None
