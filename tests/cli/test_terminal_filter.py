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
