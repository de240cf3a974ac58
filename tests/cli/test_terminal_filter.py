"""The terminal of a local run gets progress lines, not tracebacks (of any rank) nor torchrun's report;
the first rank error's exception line becomes the run's reason."""

from __future__ import annotations

from nemotron.launchers.terminal import TerminalFilter

OUTPUT = """code: /work/main
step 1/30 | loss 6.2
[rank1]: Traceback (most recent call last):
[rank1]:   File "/x/data.py", line 186, in _from_prefixes
[rank1]:     raise ValueError("bad idx")
[rank1]: ValueError: bad idx header in /d/nope.idx
[rank0]: Traceback (most recent call last):
[rank0]:   File "/x/data.py", line 186, in _from_prefixes
[rank0]: ValueError: bad idx header in /d/nope.idx
W1201 13:02:01.314000 6506 .venv/torch/distributed/elastic/multiprocessing/api.py:1028] Sending
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
/work/main/recipes/gpt/pretrain/train.py FAILED
------------------------------------------------------------
Root Cause (first observed failure):
  exitcode  : 1 (pid: 6526)
============================================================
FAILED during setup: ValueError: bad idx | 0/30 steps
"""


def test_tracebacks_and_the_elastic_report_stay_off_the_terminal():
    shown = TerminalFilter()
    kept = [line for line in OUTPUT.splitlines() if shown.show(line)]
    assert kept == ["code: /work/main", "step 1/30 | loss 6.2", "FAILED during setup: ValueError: bad idx | 0/30 steps"]
    assert shown.reason == "ValueError: bad idx header in /d/nope.idx"


def test_chained_exceptions_are_hidden_whole_and_the_first_exception_is_the_reason():
    text = [
        "Traceback (most recent call last):",
        '  File "a.py", line 1',
        "KeyError: 'x'",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "b.py", line 2',
        "RuntimeError: y",
        "done",
    ]
    shown = TerminalFilter()
    assert [line for line in text if shown.show(line)] == ["", "done"]
    assert shown.reason == "KeyError: 'x'"


def test_a_streamed_job_log_is_filtered_by_whole_lines(tmp_path, capsys):
    """cluster.wait=true streams a Slurm job's log as it grows (launchers/wait.py LogTail): a line cut
    mid-write is held back until it is whole, so a traceback split across two reads is still hidden."""
    from nemotron.launchers.wait import LogTail

    log = tmp_path / "train.log"
    log.write_text("")
    shown = TerminalFilter()
    tail = LogTail(log, shown)
    with log.open("a") as job:
        for chunk in (
            "step 1/3 | loss 6.1\nTrace",
            'back (most recent call last):\n  File "x.py", line 3\n',
            "ValueError: bad idx\nFAILED during setup | 1/3 steps\npart",
        ):
            job.write(chunk)
            job.flush()
            tail()
    assert capsys.readouterr().out == "step 1/3 | loss 6.1\nFAILED during setup | 1/3 steps\n"
    tail(final=True)  # the job ended: its last line is printed as it is
    assert capsys.readouterr().out == "part"
    assert shown.reason == "ValueError: bad idx"
