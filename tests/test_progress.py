"""nemotron.common.progress: a bar redrawn in place on a terminal, plain periodic lines elsewhere, both with
rate and ETA, and one closing line."""

from __future__ import annotations

import io

import pytest

from nemotron.common.progress import INTERVAL_ENV, Progress, amount


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(stream, clock, **kwargs):
    with Progress("export-hf", total=200, unit="tensors", stream=stream, clock=clock, **kwargs) as bar:
        for _ in range(200):
            clock.now += 0.125  # 8 tensors/s (a binary fraction: exact sums)
            bar.update()
    return stream.getvalue()


def test_a_log_file_gets_plain_lines_every_interval_with_rate_and_eta():
    out = _run(io.StringIO(), Clock(), interval_s=5.0)
    lines = out.splitlines()
    assert lines[0] == "export-hf: 40/200 tensors (20%) | 8.0 tensors/s | ETA 0:00:20"
    assert len(lines) == 6 and "\r" not in out  # at 5, 10, 15, 20 and 25 s, then the end
    assert lines[-1] == "export-hf: 200 tensors in 25.0 s (8.0 tensors/s)"


def test_the_interval_of_plain_lines_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(INTERVAL_ENV, "10")
    assert len(_run(io.StringIO(), Clock()).splitlines()) == 3  # at 10 and 20 s, then the end
    monkeypatch.delenv(INTERVAL_ENV)
    assert _run(io.StringIO(), Clock()).splitlines() == ["export-hf: 200 tensors in 25.0 s (8.0 tensors/s)"]


def test_a_terminal_gets_one_bar_redrawn_in_place():
    out = _run(Terminal(), Clock())
    frames = out.split("\r\x1b[2K")[1:]
    assert len(frames) > 10 and "\n" not in "".join(frames[:-1])  # redrawn on one line
    assert frames[5].startswith("export-hf [#") and "| 8.0 tensors/s | ETA 0:00:" in frames[5]
    last, summary = frames[-1].split("\n")[:2]
    assert last == "export-hf [########################] 100% 200/200 tensors | 8.0 tensors/s | ETA 0:00:00"
    assert summary == "export-hf: 200 tensors in 25.0 s (8.0 tensors/s)"


def test_bytes_and_an_unknown_total():
    clock, out = Clock(), io.StringIO()
    bar = Progress("import-hf", total=None, unit="B", stream=out, clock=clock, interval_s=1.0)
    clock.now += 2.0
    bar.update(3_000_000)
    assert out.getvalue() == "import-hf: 3.0 MB | 1.5 MB/s\n"
    assert amount(999, "B") == "999 B" and amount(2.5e9, "B") == "2.5 GB" and amount(1234, "docs") == "1,234 docs"


def test_a_failed_task_ends_without_a_summary_and_the_rate_text_serves_own_lines():
    clock, out = Clock(), io.StringIO()
    with pytest.raises(RuntimeError):
        with Progress("average", total=4, unit="tensors", stream=out, clock=clock) as bar:
            clock.now += 1.0
            bar.update()
            assert bar.rate_text() == "1.0 tensors/s | ETA 0:00:03"
            raise RuntimeError("disk full")
    assert out.getvalue() == ""
