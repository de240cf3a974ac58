"""Data prep: text/JSONL files -> Megatron .bin/.idx shards and a blend file; parallel and resumable.

    python -m nemotron.train +recipe=data/prep data.sources='[corpus/*.jsonl,notes.txt]'

Inputs (`data.sources`, files, globs, folders, `{path, weight}` sources or a blend file:
nemotron/common/data_sources.py): `.jsonl` (`.jsonl.gz`, `.jsonl.zst`) holds one JSON object a line
with the text under `data.text_key`; `.parquet`/`.arrow` hold it in that column; `.txt` holds one
document a line (write multi-line documents as JSONL). Blank lines and empty texts are skipped. Everything is written beside `data.blend_file`:

1. plan: one scan of each file cuts it into shards of `data.docs_per_shard` documents (byte ranges)
   and, with several workers, each shard into up to PIECES_PER_WORKER pieces per worker of about
   equal bytes, so one file keeps every worker busy;
2. tokenizer: `data.tokenizer_path` copied to `tokenizer.json`, or a byte-level BPE of
   `data.tokenizer_vocab_size` trained here on every document (reused while the sources are unchanged);
3. shards: `data.num_workers` processes (one core each; at most the CPUs this process may run on,
   and at most one a document) encode shards, or the pieces of split shards, with
   `encode_batch_fast`, appending the EOD token to every document, through Megatron's
   IndexedDatasetBuilder; this process concatenates a split shard's parts in order (`add_index`),
   so `<file stem>-<NNNNN>_text_document.{bin,idx}` hold the same bytes whatever the worker count.
   Each is written under temp names and renamed, then a `.done.json` marker (source size and
   mtime, byte range, tokenizer, counts) is written. A re-run skips every shard whose marker still
   matches; an interrupted one leaves no marker and is redone (its temp and part files removed).
   Fewer workers than asked are said in one line;
4. the blend file (layout in nemotron/common/blend.py), written last.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from nemotron.runtime.prep import tokens as prep_tokens
from nemotron.runtime.prep import workers as prep_workers
from nemotron.common.atomic_files import read_json, tmp_path_for, write_atomic
from nemotron.common.blend import write_blend
from nemotron.common.progress import Progress
from nemotron.runtime.prep.text_shard import (
    clear_stale,
    encode_piece,
    encode_shard,
    finished,
    megatron_builder,
    merge_pieces,
)
from nemotron.common.data_sources import parse_sources
from nemotron.runtime.prep.sources import (
    Shard,
    expand_sources,
    iter_documents,
    plan_shards,
    source_keys,
    split_pieces,
)
from nemotron.common.tokenizer_files import EOD_TOKEN, TOKENIZER_CONFIG, tokenizer_config, tokenizer_json

PIECES_PER_WORKER = 4
"""With several workers, each shard is cut into up to this many pieces per worker (about equal bytes),
so that one file keeps every worker busy and a worker slowed by other jobs holds up little."""
IN_FLIGHT_PER_WORKER = 2
"""Pieces (or whole shards) queued per worker at a time."""
Log = Callable[[str], None]


@dataclass(frozen=True)
class PrepSpec:
    """What to prepare; `from_data_config` reads it from the `data` group."""

    sources: Sequence[str]
    blend_file: Path
    tokenizer_path: Optional[str] = None
    vocab_size: int = 512
    eod_token: str = EOD_TOKEN
    text_key: str = "text"
    source_weights: Optional[Sequence[float]] = None
    num_workers: int = 0
    docs_per_shard: int = 100000

    @classmethod
    def from_data_config(cls, d: Any) -> "PrepSpec":
        if not d.blend_file:
            raise ValueError("data.blend_file is null: prep writes its shards and blend file beside it")
        weights = list(d.source_weights) if d.source_weights is not None else None
        return cls(sources=list(d.sources), blend_file=Path(d.blend_file), tokenizer_path=d.tokenizer_path,
                   vocab_size=d.tokenizer_vocab_size, eod_token=d.eod_token, text_key=d.text_key,
                   source_weights=weights, num_workers=d.num_workers, docs_per_shard=d.docs_per_shard)

    @property
    def out_dir(self) -> Path:
        return self.blend_file.parent


@dataclass(frozen=True)
class PrepResult:
    """What one `prepare` call did."""

    blend_file: Path
    num_shards: int
    num_skipped: int
    """Shards already finished by an earlier run."""
    num_tokens: int
    """Tokens in the whole blend."""
    encoded_tokens: int
    """Tokens encoded by this call."""
    seconds: float


# ---- the tokenizer -------------------------------------------------------------------------------


def _file_id(path: str) -> List[Any]:
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


def ensure_tokenizer(spec: PrepSpec, shards: Sequence[Shard], log: Log) -> Path:
    """`tokenizer.json` beside the shards: the given file (or a Hugging Face tokenizer directory's,
    with its tokenizer_config.json and chat template) copied, or a BPE trained on the shards."""
    target, meta_path = spec.out_dir / "tokenizer.json", spec.out_dir / "tokenizer.train.json"
    if spec.tokenizer_path:
        source = Path(tokenizer_json(spec.tokenizer_path))
        if not source.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {source} (data.tokenizer_path)")
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            write_atomic(target, source.read_bytes())
        config = tokenizer_config(spec.tokenizer_path)
        if config.is_file():
            write_atomic(spec.out_dir / TOKENIZER_CONFIG, config.read_bytes())
        meta_path.unlink(missing_ok=True)
        return target
    meta = {"vocab_size": spec.vocab_size, "eod_token": spec.eod_token, "text_key": spec.text_key,
            "sources": [_file_id(p) for p in dict.fromkeys(s.path for s in shards)]}
    if target.is_file() and read_json(meta_path) == meta:
        return target
    log(f"prep: training a BPE tokenizer (vocab {spec.vocab_size}) on {len(meta['sources'])} files")
    docs = (doc for shard in shards for doc in iter_documents(shard, spec.text_key))
    tmp = tmp_path_for(target)
    prep_tokens.train_bpe(docs, spec.vocab_size, spec.eod_token, tmp, log)
    os.replace(tmp, target)
    write_atomic(meta_path, json.dumps(meta).encode())
    return target


# ---- one shard (encoding: nemotron/runtime/prep/text_shard.py) ---------------------------------


def signature(shard: Shard, tokenizer_sha1: str, spec: PrepSpec) -> Dict[str, Any]:
    """What a finished shard's marker must record for a re-run to skip it."""
    source, size, mtime_ns = _file_id(shard.path)
    return {"source": source, "source_size": size, "source_mtime_ns": mtime_ns, "start": shard.start,
            "end": shard.end, "tokenizer_sha1": tokenizer_sha1, "eod_token": spec.eod_token,
            "text_key": shard.key or spec.text_key}



# ---- running shards ------------------------------------------------------------------------------


def _pool(workers: int) -> ProcessPoolExecutor:
    """Workers forked where the platform allows it, so they inherit the imported Megatron builder."""
    megatron_builder()  # imported once, before the fork
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def run_shards(jobs: Sequence[Tuple[Shard, Dict[str, Any]]], tokenizer_path: str, workers: int,
               log: Log) -> Dict[str, Dict[str, Any]]:
    """Encode every (shard, signature) on `workers` processes (in this one for 1); prefix -> marker.
    A split shard's pieces go to the workers one by one; this process merges them in order."""
    markers: Dict[str, Dict[str, Any]] = {}
    shards = Progress("prep", total=len(jobs), unit="shards", quiet=True)  # the lines below show it
    tokens = Progress("prep", unit="tokens", quiet=True)

    def done(shard: Shard, marker: Dict[str, Any]) -> None:
        markers[shard.prefix] = marker
        shards.update()
        tokens.update(marker["num_tokens"])
        log(f"prep: [{len(markers)}/{len(jobs)}] {Path(shard.prefix).name}: "
            f"{marker['num_docs']} docs, {marker['num_tokens']} tokens | {tokens.rate_text()} | {shards.eta_text()}")

    for shard, _ in jobs:
        clear_stale(shard)
    with prep_workers.one_thread_per_worker():
        if workers <= 1:
            for shard, sig in jobs:
                done(shard, encode_shard(shard, sig, tokenizer_path))
            return markers
        with _pool(workers) as pool:
            try:
                _run_on_pool(pool, jobs, workers, tokenizer_path, done)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return markers


Task = Tuple[Shard, Dict[str, Any], int, Shard]
"""(shard, signature, piece index or -1 for a whole shard, the byte range to encode)."""


def _tasks(jobs: Sequence[Tuple[Shard, Dict[str, Any]]]) -> Iterator[Task]:
    for shard, sig in jobs:
        parts = split_pieces(shard)
        if len(parts) == 1:
            yield shard, sig, -1, shard
        else:
            yield from ((shard, sig, i, piece) for i, piece in enumerate(parts))


def _run_on_pool(pool: ProcessPoolExecutor, jobs: Sequence[Tuple[Shard, Dict[str, Any]]], workers: int,
                 tokenizer_path: str, done: Callable[[Shard, Dict[str, Any]], None]) -> None:
    """Whole shards and the pieces of split ones, in order, at most IN_FLIGHT_PER_WORKER per worker
    queued at a time (bounded memory and part files on any corpus); each shard finished as it completes."""
    tasks = _tasks(jobs)
    pending: Dict[Any, Task] = {}
    counts: Dict[str, List[Optional[Tuple[int, int]]]] = {}
    vocab_size = prep_tokens.load_tokenizer(tokenizer_path, jobs[0][1]["tokenizer_sha1"]).get_vocab_size()
    while True:
        for task in itertools.islice(tasks, IN_FLIGHT_PER_WORKER * workers - len(pending)):
            shard, sig, index, span = task
            if index < 0:
                pending[pool.submit(encode_shard, shard, sig, tokenizer_path)] = task
            else:
                counts.setdefault(shard.prefix, [None] * (len(shard.splits) + 1))
                pending[pool.submit(encode_piece, span, index, sig, tokenizer_path)] = task
        if not pending:
            return
        finished_now, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished_now:
            shard, sig, index, _ = pending.pop(future)
            if index < 0:
                done(shard, future.result())
                continue
            got = counts[shard.prefix]
            got[index] = future.result()
            if all(c is not None for c in got):
                del counts[shard.prefix]
                done(shard, merge_pieces(shard, sig, got, vocab_size))


# ---- the whole prep ------------------------------------------------------------------------------


def _source_weights(spec: PrepSpec) -> Optional[List[float]]:
    """One weight per source: data.source_weights, or the weighted sources' own (`{path, weight}`)."""
    sources = parse_sources(spec.sources)
    weights = spec.source_weights
    if sources and sources[0].weight is not None:
        if weights is not None:
            raise ValueError("data.source_weights and weighted data.sources are both set; use one of them")
        weights = [s.weight for s in sources]
    if weights is None:
        return None
    if len(weights) != len(sources):
        raise ValueError(
            f"data.source_weights has {len(weights)} entries for {len(sources)} data.sources")
    if any(w < 0 for w in weights) or not sum(weights) > 0:
        raise ValueError(f"data.source_weights={list(weights)} must be non-negative with a positive sum")
    return [float(w) for w in weights]


def blend_content(spec: PrepSpec, shards: Sequence[Shard], markers: Dict[str, Dict[str, Any]],
                  tokenizer: Any, tokenizer_sha1: str) -> Dict[str, Any]:
    """The blend file's content: every non-empty shard, weighted by its source's weight and size."""
    kept = [s for s in shards if markers[s.prefix]["num_docs"] > 0]
    if not kept:
        raise ValueError(f"data.sources {list(spec.sources)} hold no documents")
    source_tokens: Dict[int, int] = {}
    for s in kept:
        source_tokens[s.source_index] = source_tokens.get(s.source_index, 0) + markers[s.prefix]["num_tokens"]
    given = _source_weights(spec)
    raw = [(given[s.source_index] / source_tokens[s.source_index] if given else 1.0)
           * markers[s.prefix]["num_tokens"] for s in kept]
    total_weight = sum(raw)
    datasets = [{"prefix": os.path.relpath(s.prefix, spec.out_dir), "weight": w / total_weight,
                 "num_docs": markers[s.prefix]["num_docs"], "num_tokens": markers[s.prefix]["num_tokens"],
                 "source": s.path} for s, w in zip(kept, raw)]
    return {"tokenizer": "tokenizer.json", "tokenizer_sha1": tokenizer_sha1,
            "vocab_size": tokenizer.get_vocab_size(), "eod_token": spec.eod_token,
            "eod": tokenizer.token_to_id(spec.eod_token),
            "num_docs": sum(d["num_docs"] for d in datasets),
            "num_tokens": sum(d["num_tokens"] for d in datasets), "datasets": datasets}


def prepare(spec: PrepSpec, log: Log = print) -> PrepResult:
    """Plan, tokenize what is not finished yet, and write the blend file; see the module docstring."""
    began = time.perf_counter()
    _source_weights(spec)  # bad weights fail before any work
    files = expand_sources(spec.sources)
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    most = prep_workers.worker_limit(spec.num_workers, prep_workers.default_workers())
    shards = plan_shards(files, spec.docs_per_shard, spec.out_dir, PIECES_PER_WORKER * most if most > 1 else 1,
                         source_keys(spec.sources))
    log(f"prep: {len(files)} files -> {len(shards)} shards of up to {spec.docs_per_shard} docs "
        f"in {spec.out_dir}")
    tokenizer_path = ensure_tokenizer(spec, shards, log)
    sha1 = hashlib.sha1(tokenizer_path.read_bytes()).hexdigest()
    tokenizer = prep_tokens.load_tokenizer(str(tokenizer_path), sha1)
    prep_tokens.eod_id(tokenizer, spec.eod_token, spec.tokenizer_path or str(tokenizer_path))
    sigs = [signature(s, sha1, spec) for s in shards]
    markers = {s.prefix: m for s, sig in zip(shards, sigs) if (m := finished(s, sig)) is not None}
    todo = [(s, sig) for s, sig in zip(shards, sigs) if s.prefix not in markers]
    num_pieces = sum(len(s.splits) + 1 for s, _ in todo)
    workers, fewer = prep_workers.choose_workers(spec.num_workers, prep_workers.default_workers(), num_pieces)
    if fewer:
        log(fewer)
    log(f"prep: {len(markers)} shards already done; encoding {len(todo)} on {workers} workers"
        + (f" ({num_pieces} pieces)" if num_pieces > len(todo) else ""))
    encoded = run_shards(todo, str(tokenizer_path), workers, log) if todo else {}
    markers.update(encoded)
    content = blend_content(spec, shards, markers, tokenizer, sha1)
    write_blend(spec.blend_file, content)
    seconds = time.perf_counter() - began
    encoded_tokens = sum(m["num_tokens"] for m in encoded.values())
    log(f"prep: {content['num_docs']} docs, {content['num_tokens']} tokens in {len(content['datasets'])} "
        f"shards; encoded {encoded_tokens} tokens in {seconds:.1f} s -> {spec.blend_file}")
    return PrepResult(spec.blend_file, len(shards), len(markers) - len(encoded), content["num_tokens"],
                      encoded_tokens, seconds)

