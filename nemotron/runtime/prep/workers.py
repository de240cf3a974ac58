"""How many worker processes a prep uses, and what each may use: one core, tokenizers' own threads off.

Shared by the pretraining and SFT preps (`prep`, `sft_prep`). Fewer workers than asked are said in
one line (`choose_workers`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple


def default_workers() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_limit(asked: int, cpus: int) -> int:
    """The most workers worth starting: `asked` (0: every CPU), one CPU each."""
    return max(1, min(asked or cpus, cpus))


def choose_workers(asked: int, cpus: int, pieces: int) -> Tuple[int, Optional[str]]:
    """The workers to start for `pieces` pieces of work when `asked` for (0: every CPU) on `cpus`
    CPUs, and one line saying why that is fewer than asked, if it is."""
    want = asked or cpus
    used = max(1, min(worker_limit(asked, cpus), pieces))
    if used >= want or pieces == 0:
        return used, None
    if pieces < worker_limit(asked, cpus):
        docs = f"{pieces} document is" if pieces == 1 else f"{pieces} documents are"
        why = f"only {docs} left to encode, one worker each at most"
    else:
        why = f"this process may run on {cpus} CPUs, one worker each"
    return used, f"prep: using {used} of {want} workers (data.num_workers={asked}): {why}"


@contextmanager
def one_thread_per_worker() -> Iterator[None]:
    """Tokenizers' own thread pool off while encoding (and in forked workers): one core each."""
    old = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = old
