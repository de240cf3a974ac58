"""The tokenizer side of data prep: a byte-level BPE trained on the corpus, loaded once per process.

Shared by the pretraining, SFT and preference preps (`prep`, `sft_prep`, `preference_prep`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Tuple

from nemotron.common.progress import Progress, interactive


def train_bpe(
    documents: Iterable[str], vocab_size: int, eod_token: str, path: Path, log: Callable[[str], None] = print
) -> None:
    """Train a byte-level BPE with `eod_token` as its one special token and save it to `path`.

    On a terminal the trainer shows its own bars (reading, merges); elsewhere (a log file, a Slurm job)
    a plain line every `NEMOTRON_PROGRESS_INTERVAL_S` seconds counts the documents read, and one line
    ends it, each through `log` (prep's own log: silent where prep is, e.g. the embedded tiny data)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    terminal = interactive(sys.stderr)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[eod_token],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=terminal,
    )
    with Progress("tokenizer", unit="docs", stream=LogStream(log), quiet=terminal) as progress:
        tok.train_from_iterator(_counted(documents, progress), trainer)
    tok.save(str(path))


class LogStream:
    """A text stream whose complete lines go to `log` (Progress writes its lines to it)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log, self.pending = log, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip():
                self.log(line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _counted(documents: Iterable[str], progress: Progress) -> Iterator[str]:
    for document in documents:
        progress.update()
        yield document


_TOKENIZERS: Dict[Tuple[str, str], Any] = {}


def load_tokenizer(path: str, sha1: str) -> Any:
    """The tokenizer at `path`, loaded once per process and content."""
    from tokenizers import Tokenizer

    if (path, sha1) not in _TOKENIZERS:
        _TOKENIZERS[(path, sha1)] = Tokenizer.from_file(path)
    return _TOKENIZERS[(path, sha1)]


def eod_id(tok: Any, eod_token: str, path: str) -> int:
    eod = tok.token_to_id(eod_token)
    if eod is None:
        raise ValueError(f"tokenizer {path} has no {eod_token!r} end-of-document token (data.eod_token)")
    return eod
