"""SFT data prep: chat JSONL -> tokenized samples with loss masks, packed into seq_length bins.

    python -m nemotron.train +recipe=data/prep_sft data.sources='[chats/*.jsonl]' \
        data.tokenizer_path=<the pretrained model's tokenizer.json>

Input lines and templates: nemotron/runtime/prep/chat.py. Steps, all written beside `data.packed_file`:

1. the template is checked on a probe conversation (a template that never marks assistant text,
   or marks prompts, is refused in one line before anything is written);
2. shards of `data.docs_per_shard` lines (text_sources.plan_shards) are rendered, tokenized with
   `encode_batch` (offsets give the loss mask: assistant tokens and their end-of-turn token) on
   `data.num_workers` processes; each writes `<stem>-NNNNN.chat.npz` and then a `.done.json` marker
   with its counts. A re-run skips shards whose marker matches (source, range, tokenizer,
   template, seq_length, data.overlong); a killed one is redone;
3. each kept conversation goes to train/valid/test by a seeded hash of its file and line
   (`data.split` parts), and each split is packed by best-fit decreasing (runtime/packing.py) into
   bins of `model.seq_length` positions: `sft-<split>.{tokens,mask,lengths,bins}.npy`;
4. `report.json` and the manifest (`data.packed_file`) are written last; the same inputs give the
   same bytes. Samples longer than seq_length + 1 tokens are truncated or dropped
   (`data.overlong`); conversations without an assistant turn, or left without loss tokens, are
   dropped and counted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from nemotron.common.atomic_files import read_json, tmp_path_for, write_atomic
from nemotron.common.data_sources import parse_sources
from nemotron.common.progress import Progress
from nemotron.runtime.prep import chat
from nemotron.runtime.prep import mix
from nemotron.runtime.prep import text as prep
from nemotron.runtime.prep import tokens as prep_tokens
from nemotron.runtime.prep import workers as prep_workers
from nemotron.runtime.prep.sft_report import Counts, refuse_broken, report_lines
from nemotron.runtime.prep.sft_pack import SPLITS, split_fractions, split_of, write_splits
from nemotron.runtime.prep.sources import Shard, expand_sources, plan_shards, shard_records, source_keys
from nemotron.common.tokenizer_files import tokenizer_json

FORMAT = "nemotron-sft-1"
"""Version of the manifest layout."""
__all__ = ["SPLITS", "split_fractions", "split_of", "SftPrepSpec", "prepare_sft", "shard_lines"]
OVERLONG = ("truncate", "drop")
"""What `data.overlong` may say."""
RENDER_BATCH = 512
"""Conversations per `encode_batch` call."""
Log = Callable[[str], None]


@dataclass(frozen=True)
class SftPrepSpec:
    """What to prepare; `from_config` reads it from a run config's `data` and `model` sections."""

    sources: Sequence[str]
    packed_file: Path
    tokenizer_path: str
    seq_length: int
    chat_template: Optional[str] = None
    eod_token: str = prep.EOD_TOKEN
    overlong: str = "truncate"
    split: str = "98,1,1"
    seed: int = 1234
    num_workers: int = 0
    docs_per_shard: int = 100000
    messages_key: str = "messages"

    @classmethod
    def from_config(cls, cfg: Any) -> "SftPrepSpec":
        d = cfg.data
        if not d.packed_file:
            raise ValueError("data.packed_file is null: SFT prep writes its samples and manifest beside it")
        if not d.tokenizer_path:
            raise ValueError(
                "data.tokenizer_path is null: name the tokenizer the pretrained model was "
                "trained with (e.g. the tokenizer.json beside a blend file)"
            )
        return cls(
            sources=list(d.sources),
            packed_file=Path(d.packed_file),
            tokenizer_path=tokenizer_json(d.tokenizer_path),
            seq_length=int(cfg.model.seq_length),
            chat_template=d.chat_template,
            eod_token=d.eod_token,
            overlong=str(getattr(d.overlong, "value", d.overlong)),
            split=str(d.split),
            seed=int(d.seed),
            num_workers=int(d.num_workers),
            docs_per_shard=int(d.docs_per_shard),
            messages_key=str(d.get("messages_key", "messages")),
        )

    @property
    def out_dir(self) -> Path:
        return self.packed_file.parent


# ---- one shard -----------------------------------------------------------------------------------


def shard_lines(shard: Shard):
    """(line or row number, the line as text or the row as a dict) of the shard's records."""
    for lineno, raw in shard_records(shard):
        if isinstance(raw, dict):
            yield lineno, raw
            continue
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise chat.ChatDataError(f"{shard.path}:{lineno}: not UTF-8 ({exc.reason})") from None


def _conversations(shard: Shard, counts: Counts, messages_key: str):
    for lineno, line in shard_lines(shard):
        conversation = chat.parse_chat(line, f"{shard.path}:{lineno}", shard.key or messages_key)
        if conversation is None:
            continue
        counts.read += 1
        if not chat.has_assistant(conversation.messages):
            counts.dropped["no_assistant_turn"] += 1
            continue
        yield lineno, conversation


def _sample(
    ids: List[int], mask: np.ndarray, seq_length: int, overlong: str, counts: Counts
) -> Optional[Tuple[List[int], np.ndarray]]:
    """The (ids, mask) kept for one conversation, counted; None when it is dropped."""
    if len(ids) > seq_length + 1:
        if overlong == "drop":
            counts.dropped["too_long"] += 1
            return None
        ids, mask = ids[: seq_length + 1], mask[: seq_length + 1]
        counts.truncated += 1
    targets = int(mask[1:].sum())  # token t is predicted at position t-1: the first never is
    if targets == 0:
        counts.dropped["no_loss_tokens"] += 1
        return None
    counts.mask_all_ones += int(targets == len(ids) - 1)
    counts.kept += 1
    counts.tokens += len(ids)
    counts.loss_tokens += targets
    return ids, mask


def chat_path(shard: Shard) -> Path:
    """The shard's samples file."""
    return Path(shard.prefix.removesuffix("_text_document") + ".chat.npz")


def _marker(shard: Shard) -> Path:
    return chat_path(shard).with_suffix(".done.json")


def encode_chat_shard(
    shard: Shard, sig: Dict[str, Any], tokenizer_path: str, template: str, origin: str
) -> Dict[str, Any]:
    """Render, tokenize and mask one shard into its .chat.npz, then write its marker."""
    tok = prep_tokens.load_tokenizer(tokenizer_path, sig["tokenizer_sha1"])
    renderer = chat.ChatRenderer(template, sig["eod_token"], origin, sig["template_tokens"])
    counts, ids_out, mask_out, lengths, lines = Counts(), [], [], [], []
    pending: List[Tuple[int, chat.Rendered]] = []

    def flush() -> None:
        encodings = tok.encode_batch([r.text for _, r in pending], add_special_tokens=False)
        masks = chat.token_masks([enc.offsets for enc in encodings], [r.spans for _, r in pending])
        for (lineno, _), enc, mask in zip(pending, encodings, masks):
            kept = _sample(enc.ids, mask, sig["seq_length"], sig["overlong"], counts)
            if kept is not None:
                ids_out.append(np.asarray(kept[0], np.int32))
                mask_out.append(kept[1])
                lengths.append(len(kept[0]))
                lines.append(lineno)
        pending.clear()

    for lineno, conversation in _conversations(shard, counts, sig["messages_key"]):
        where = f"{shard.path}:{lineno}"
        pending.append((lineno, renderer.render(conversation.messages, where, conversation.tools)))
        if len(pending) == RENDER_BATCH:
            flush()
    flush()
    save_npz(
        chat_path(shard),
        tokens=np.concatenate(ids_out or [np.zeros(0, np.int32)]),
        mask=np.concatenate(mask_out or [np.zeros(0, np.uint8)]),
        lengths=np.asarray(lengths, np.int32),
        lines=np.asarray(lines, np.int32),
    )
    marker = {**sig, "counts": asdict(counts)}
    write_atomic(_marker(shard), json.dumps(marker).encode())  # last: "finished"
    return marker


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = tmp_path_for(path)
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def save_npy(path: Path, array: np.ndarray) -> None:
    tmp = tmp_path_for(path)
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def shard_signature(
    shard: Shard, spec: SftPrepSpec, tokenizer_sha1: str, template_sha1: str, renderer: chat.ChatRenderer
) -> Dict[str, Any]:
    """What a finished shard's marker must record for a re-run to skip it."""
    st = os.stat(shard.path)
    return {
        "source": shard.path,
        "source_size": st.st_size,
        "source_mtime_ns": st.st_mtime_ns,
        "start": shard.start,
        "end": shard.end,
        "tokenizer_sha1": tokenizer_sha1,
        "template_sha1": template_sha1,
        "template_tokens": renderer.tokens,
        "renderer": renderer.version,
        "eod_token": spec.eod_token,
        "seq_length": spec.seq_length,
        "overlong": spec.overlong,
        "messages_key": shard.key or spec.messages_key,
    }


def _finished(shard: Shard, sig: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    marker = read_json(_marker(shard))
    if not isinstance(marker, dict) or any(marker.get(k) != v for k, v in sig.items()):
        return None
    return marker if chat_path(shard).is_file() else None


# ---- running shards ------------------------------------------------------------------------------


def _run_shards(
    jobs: Sequence[Tuple[Shard, Dict[str, Any]]],
    tokenizer_path: str,
    template: str,
    origin: str,
    workers: int,
    log: Log,
) -> Dict[str, Dict[str, Any]]:
    """Encode every (shard, signature) on `workers` processes (in this one for 1); prefix -> marker."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    markers: Dict[str, Dict[str, Any]] = {}
    shards = Progress("sft prep", total=len(jobs), unit="shards", quiet=True)  # the lines below show it
    tokens = Progress("sft prep", unit="tokens", quiet=True)

    def done(shard: Shard, marker: Dict[str, Any]) -> None:
        markers[shard.prefix] = marker
        c = marker["counts"]
        shards.update()
        tokens.update(c["tokens"])
        log(
            f"sft prep: [{len(markers)}/{len(jobs)}] {chat_path(shard).name}: "
            f"{c['kept']}/{c['read']} conversations, {c['tokens']} tokens | {tokens.rate_text()} | "
            f"{shards.eta_text()}"
        )

    args = (tokenizer_path, template, origin)
    with prep_workers.one_thread_per_worker():
        if workers <= 1:
            for shard, sig in jobs:
                done(shard, encode_chat_shard(shard, sig, *args))
            return markers
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(encode_chat_shard, s, sig, *args): s for s, sig in jobs}
            try:
                for future in as_completed(futures):
                    done(futures[future], future.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return markers


# ---- the whole prep ------------------------------------------------------------------------------


def _fewer_workers(spec: SftPrepSpec, workers: int, todo: int) -> Optional[str]:
    """One line saying why fewer workers than `data.num_workers` encode, if they do."""
    want = spec.num_workers or prep_workers.default_workers()
    if workers >= want or not todo:
        return None
    if todo >= prep_workers.worker_limit(spec.num_workers, prep_workers.default_workers()):
        why = f"this process may run on {prep_workers.default_workers()} CPUs, one worker each"
    else:
        why = (
            f"only {todo} shard{'s' if todo > 1 else ''} of up to data.docs_per_shard={spec.docs_per_shard} "
            "conversations left to encode, one worker each at most (a smaller data.docs_per_shard splits more)"
        )
    return f"sft prep: using {workers} of {want} workers (data.num_workers={spec.num_workers}): {why}"


def prepare_sft(spec: SftPrepSpec, log: Log = print) -> Dict[str, Any]:
    """Check the template, encode what is not finished, pack, write report and manifest; the report."""
    if spec.overlong not in OVERLONG:
        raise ValueError(f"data.overlong={spec.overlong!r} must be one of {', '.join(OVERLONG)}")
    split_fractions(spec.split)
    template, origin = chat.template_source(spec.chat_template, spec.tokenizer_path)
    renderer = chat.ChatRenderer(
        template, spec.eod_token, origin, chat.template_tokens(spec.tokenizer_path, spec.eod_token)
    )
    chat.check_template(renderer)  # before any write
    sources = parse_sources(spec.sources)
    files = expand_sources(spec.sources)
    not_chat = [p for _, p in files if p.endswith(".txt")]
    if not_chat:
        raise ValueError(f"data.sources: {not_chat[0]}: SFT prep reads chat records (.jsonl, .parquet, ...)")
    shards = plan_shards(files, spec.docs_per_shard, spec.out_dir, keys=source_keys(spec.sources))  # before writes
    source = Path(spec.tokenizer_path)
    if not source.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {source} (data.tokenizer_path)")
    tok_sha1 = hashlib.sha1(source.read_bytes()).hexdigest()
    prep_tokens.eod_id(prep_tokens.load_tokenizer(str(source), tok_sha1), spec.eod_token, str(source))
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_path = spec.out_dir / "tokenizer.json"
    if not tokenizer_path.is_file() or tokenizer_path.read_bytes() != source.read_bytes():
        write_atomic(tokenizer_path, source.read_bytes())
    template_sha1 = hashlib.sha1(template.encode()).hexdigest()
    sigs = [shard_signature(s, spec, tok_sha1, template_sha1, renderer) for s in shards]
    markers = {s.prefix: m for s, sig in zip(shards, sigs) if (m := _finished(s, sig)) is not None}
    todo = [(s, sig) for s, sig in zip(shards, sigs) if s.prefix not in markers]
    workers = max(1, min(prep_workers.worker_limit(spec.num_workers, prep_workers.default_workers()), len(todo)))
    fewer = _fewer_workers(spec, workers, len(todo))
    if fewer:
        log(fewer)
    log(
        f"sft prep: {len(files)} files -> {len(shards)} shards; {len(markers)} already done, "
        f"encoding {len(todo)} on {workers} workers (template: {origin})"
    )
    if todo:
        markers.update(_run_shards(todo, str(tokenizer_path), template, origin, workers, log))
    counts, by_source = Counts(), [Counts() for _ in sources]
    for s in shards:
        counts.add(markers[s.prefix]["counts"])
        by_source[s.source_index].add(markers[s.prefix]["counts"])
    refuse_broken(counts, spec.sources)
    splits, chosen, chosen_tokens = write_splits(
        shards, sources, chat_path, spec.out_dir, spec.seq_length, spec.seed, spec.split
    )
    report = {
        "counts": asdict(counts),
        "seq_length": spec.seq_length,
        "loss_token_share": round(counts.loss_tokens / max(1, counts.tokens), 6),
        "packing": "best-fit decreasing",
        "splits": splits,
        "sources": mix.source_rows(sources, [asdict(c) for c in by_source], chosen, chosen_tokens),
    }
    write_atomic(spec.out_dir / "report.json", json.dumps(report, indent=1).encode())
    manifest = manifest_of(FORMAT, spec, tok_sha1, template_sha1, origin, splits)
    write_atomic(spec.packed_file, json.dumps(manifest, indent=1).encode())
    log(f"sft prep report ({spec.out_dir / 'report.json'}):")
    for line in report_lines({**report, "peak_rss_mb": mix.peak_rss_mb()}):  # said, not written: same bytes
        log(line)
    return report


def manifest_of(fmt: str, spec: Any, tok_sha1: str, template_sha1: str, origin: str, splits: Any) -> Dict[str, Any]:
    """The manifest SFT and DPO prep write beside their splits (`fmt` tells them apart)."""
    return {
        "format": fmt,
        "tokenizer": "tokenizer.json",
        "tokenizer_sha1": tok_sha1,
        "eod_token": spec.eod_token,
        "template_sha1": template_sha1,
        "template_origin": origin,
        "seq_length": spec.seq_length,
        "split": spec.split,
        "seed": spec.seed,
        "splits": splits,
        "report": "report.json",
    }
