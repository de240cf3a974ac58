"""Records written whole or not at all (nemotron/common/atomic_files.py), and the launch records that
use it: a write that fails midway leaves the old content and no temp file; success leaves no temp file;
the file and its directory are fsynced.

No real power loss can be simulated here: durability is checked by recording the `os.fsync` calls
(which path each synced descriptor points at) and their order relative to the rename.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from nemotron.common import atomic_files
from nemotron.common.atomic_files import (
    fsync_tree,
    read_json,
    unique_tmp_path,
    write_atomic,
    write_json_atomic,
    write_text_atomic,
)


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.fixture
def synced(monkeypatch):
    """The paths passed to os.fsync, in order (the real fsync still runs)."""
    calls: list = []
    real = os.fsync

    def fsync(fd):
        calls.append(_fd_path(fd))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_write_replaces_content_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "rec.json"
    write_json_atomic(path, {"job_id": "1"})
    write_json_atomic(path, {"job_id": "2"})
    assert read_json(path) == {"job_id": "2"}
    assert path.read_text().endswith("\n")
    assert [p.name for p in tmp_path.iterdir()] == ["rec.json"]


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_failure_midway_keeps_old_content_and_removes_temp(tmp_path, monkeypatch, where):
    path = tmp_path / "slurm_job.json"
    path.write_text('{"job_id": "old"}\n')

    def boom(*_a, **_k):
        raise OSError(28, "No space left on device")

    if where == "replace":
        monkeypatch.setattr(os, "replace", boom)
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", boom)
    else:  # the bytes themselves fail to go out
        real_fdopen = os.fdopen

        class _Half:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                boom()

        monkeypatch.setattr(os, "fdopen", lambda fd, mode: _Half(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left"):
        write_json_atomic(path, {"job_id": "new", "pad": "x" * 10000})
    assert read_json(path) == {"job_id": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["slurm_job.json"]


def test_file_is_fsynced_before_rename_and_directory_after(tmp_path, synced, monkeypatch):
    order: list = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append(("replace", str(b))), real_replace(a, b)))
    path = tmp_path / "sweep.json"
    write_text_atomic(path, "{}\n")
    assert len(synced) == 2
    assert synced[0].startswith(str(path) + ".tmp")  # the temp file, before it became `path`
    assert synced[1] == str(tmp_path)  # the directory entry of the rename
    assert order == [("replace", str(path))]


def test_temp_names_are_unique_per_writer_and_beside_the_target(tmp_path):
    path = tmp_path / "x.json"
    names = {unique_tmp_path(path) for _ in range(100)}
    assert len(names) == 100
    assert all(n.parent == tmp_path and n.name.startswith(f"x.json.tmp{os.getpid()}-") for n in names)


def test_mode_is_set_at_creation(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def replace(a, b):
        seen.append(stat.S_IMODE(os.stat(a).st_mode))
        return real_replace(a, b)

    monkeypatch.setattr(os, "replace", replace)
    write_atomic(tmp_path / "secrets.env", b"K=v\n", mode=0o600)
    assert seen == [0o600]  # never readable by others, not even as the temp file
    assert stat.S_IMODE((tmp_path / "secrets.env").stat().st_mode) == 0o600


def test_fsync_tree_syncs_every_file_and_folder(tmp_path, synced):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("x", "a/y", "a/b/z"):
        (tmp_path / rel).write_bytes(b"1")
    fsync_tree(tmp_path)
    files = {str(tmp_path / r) for r in ("x", "a/y", "a/b/z")}
    dirs = [str(tmp_path / "a" / "b"), str(tmp_path / "a"), str(tmp_path)]
    assert set(synced[:3]) == files
    assert synced[3:] == dirs  # deepest first, the root last


def test_launch_records_go_through_the_helper(tmp_path, monkeypatch):
    """slurm_job.json, config.yaml, secrets.env, sweep.json (resubmit) and the preemption marker."""
    from nemotron.launchers import records, resubmit

    written: list = []
    real = atomic_files.write_atomic

    def spy(path, content, mode=0o666):
        written.append(Path(path).name)
        return real(path, content, mode)

    monkeypatch.setattr(atomic_files, "write_atomic", spy)
    records.write_member(tmp_path, "a: 1\n", {"TOKEN": "s"})
    records.write_record(tmp_path, {"job_id": "7"})
    resubmit.update_record(tmp_path, "8")
    assert written == ["config.yaml", "secrets.env", "slurm_job.json", "slurm_job.json"]
    rec = json.loads((tmp_path / "slurm_job.json").read_text())
    assert rec["job_id"] == "8" and rec["previous_job_ids"] == ["7"]
    assert stat.S_IMODE((tmp_path / "secrets.env").stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
