"""Data prep's workers on one file: shards cut into pieces, the same bytes as one worker, one line
when fewer workers are used than asked, and a killed split run that resumes."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from nemotron.runtime.prep import text as prep
from nemotron.runtime.prep import tokens as prep_tokens
from nemotron.runtime.prep import workers as prep_workers
from nemotron.runtime.prep.sources import expand_sources, iter_documents, plan_shards, split_pieces

DOCS, DOCS_PER_SHARD = 300, 120


def _text(i: int) -> str:
    return f"Doc {i}: " + " ".join(["the quick brown fox", "ünïcode", "jumps"][: 1 + i % 3]) * (1 + i % 7)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """One JSONL file of 300 documents of uneven length, a blank line and an empty text among them."""
    root = tmp_path_factory.mktemp("one_file")
    lines = [json.dumps({"text": _text(i)}) for i in range(DOCS)]
    lines[40:40] = ["", json.dumps({"text": ""})]
    (root / "web.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    prep_tokens.train_bpe((_text(i) for i in range(DOCS)), 300, prep.EOD_TOKEN, root / "tokenizer.json")
    return root


def _spec(corpus: Path, out: Path, workers: int, **kw) -> prep.PrepSpec:
    fields = dict(
        sources=[str(corpus / "web.jsonl")],
        blend_file=out / "blend.json",
        tokenizer_path=str(corpus / "tokenizer.json"),
        num_workers=workers,
        docs_per_shard=DOCS_PER_SHARD,
    )
    return prep.PrepSpec(**{**fields, **kw})


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.fixture(scope="module")
def one_worker(corpus, tmp_path_factory) -> dict[str, bytes]:
    """Every file a one-worker prep of the corpus writes, by name."""
    out = tmp_path_factory.mktemp("one_worker")
    prep.prepare(_spec(corpus, out, 1), log=lambda line: None)
    return _files(out)


def test_pieces_cover_each_shard_in_order_with_documents_each(corpus):
    files = expand_sources([str(corpus / "web.jsonl")])
    whole = plan_shards(files, DOCS_PER_SHARD, corpus)
    split = plan_shards(files, DOCS_PER_SHARD, corpus, pieces=8)

    assert [(s.start, s.end, s.prefix) for s in split] == [(s.start, s.end, s.prefix) for s in whole]
    assert all(s.splits == () for s in whole) and all(len(s.splits) == 7 for s in split)
    for shard in split:
        parts = split_pieces(shard)
        assert parts[0].start == shard.start and parts[-1].end == shard.end
        assert all(a.end == b.start for a, b in zip(parts, parts[1:], strict=False))
        assert all(list(iter_documents(p, "text")) for p in parts)
        assert [d for p in parts for d in iter_documents(p, "text")] == list(iter_documents(shard, "text"))
        sizes = [p.end - p.start for p in parts]
        assert max(sizes) < 2 * (shard.end - shard.start) / len(parts)  # about equal bytes
    assert len(split_pieces(plan_shards(files, 1, corpus, pieces=8)[0])) == 1  # one document: one piece


def test_two_workers_write_the_bytes_one_worker_writes(corpus, one_worker, tmp_path):
    lines: list[str] = []
    prep.prepare(_spec(corpus, tmp_path, 2), log=lines.append)

    assert any("encoding 3 on 2 workers (24 pieces)" in line for line in lines), lines
    assert not any("workers (data.num_workers" in line for line in lines)
    assert not list(tmp_path.glob("*.tmp*"))
    written = _files(tmp_path)
    assert sorted(written) == sorted(one_worker) and len(written) == 3 * 3 + 2  # .bin .idx .done.json
    assert {name for name in written if written[name] != one_worker[name]} == set()


def test_fewer_workers_than_asked_are_said_in_one_line(corpus, tmp_path):
    tiny = tmp_path / "tiny.jsonl"
    tiny.write_text(json.dumps({"text": "one lonely document"}) + "\n")
    lines: list[str] = []
    prep.prepare(_spec(corpus, tmp_path / "out", 2, sources=[str(tiny)]), log=lines.append)
    said = [line for line in lines if "workers (data.num_workers" in line]
    assert said == [
        "prep: using 1 of 2 workers (data.num_workers=2): only 1 document is left to encode, one worker each at most"
    ]

    cpus = prep_workers.default_workers()
    used, why = prep_workers.choose_workers(cpus + 2, cpus, 1000)
    assert used == cpus and why == (
        f"prep: using {cpus} of {cpus + 2} workers (data.num_workers={cpus + 2}): "
        f"this process may run on {cpus} CPUs, one worker each"
    )
    assert prep_workers.choose_workers(0, cpus, 1000) == (cpus, None)
    assert prep_workers.choose_workers(2, 4, 0) == (1, None)  # nothing left to encode: nothing to say


def _prep_in_own_session(spec: prep.PrepSpec) -> None:
    os.setsid()  # its workers join this session: one killpg stops them all
    prep.prepare(spec, log=lambda line: None)


def test_a_split_run_killed_midway_resumes_to_the_same_bytes(corpus, tmp_path):
    big = tmp_path / "big.jsonl"  # one shard, long enough to be caught between its pieces and the merge
    big.write_text("".join(json.dumps({"text": _text(i)}) + "\n" for i in range(30_000)), encoding="utf-8")
    spec = _spec(corpus, tmp_path / "killed", 2, sources=[str(big)], docs_per_shard=10**6)
    out = spec.out_dir
    proc = multiprocessing.get_context("fork").Process(target=_prep_in_own_session, args=(spec,))
    proc.start()  # forked: megatron.core is imported already
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*.part*.tmp.idx")) and proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the prep and its workers, as a killed job's
        proc.join()
    assert list(out.glob("*.part*.tmp.*")) and not list(out.glob("*.done.json")), "not caught midway"

    lines: list[str] = []
    resumed = prep.prepare(spec, log=lines.append)
    reference = tmp_path / "reference"
    prep.prepare(_spec(corpus, reference, 1, sources=[str(big)], docs_per_shard=10**6), log=lambda line: None)

    assert "prep: 0 shards already done; encoding 1 on 2 workers (8 pieces)" in lines
    assert resumed.num_skipped == 0 and resumed.encoded_tokens == resumed.num_tokens > 30_000
    assert not list(out.glob("*.tmp*"))
    assert _files(out) == _files(reference)
