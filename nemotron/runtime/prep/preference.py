"""DPO data prep: preference-pair JSONL -> tokenized (chosen, rejected) samples with answer masks.

    python -m nemotron.train +recipe=data/prep_dpo data.sources='[pairs/*.jsonl]' \
        data.tokenizer_path=<the SFT model's tokenizer.json>

Line formats: nemotron/runtime/prep/pairs.py. Each side is rendered as a whole conversation
with the SFT chat template (nemotron/runtime/prep/chat.py, checked on a probe first) and tokenized; its
mask covers the answer's assistant turns only (the last generation blocks of the render), so the
sequence log-probability DPO compares is that of the answer given the prompt. Reads the same
`data` keys as SFT prep (`SftPrepSpec`); writes beside `data.packed_file`:

- `dpo-<split>.{tokens,mask,lengths,bins}.npy`: samples in the order chosen, rejected, chosen, ...
  (`bins` is the SFT layout's bin index: every bin is one pair of two samples), each pair in
  train/valid/test by the seeded hash SFT prep uses (`data.split`);
- `report.json` and the manifest (format `nemotron-dpo-1`), last.

A side longer than seq_length + 1 tokens is truncated or its pair dropped (`data.overlong`); a pair
with a side left without answer tokens is dropped; both counted. Prep runs in this process (no
shards to resume): preference sets are small next to pretraining corpora. Encoded pairs wait in
spill files between the two passes (nemotron/runtime/prep/pair_spill.py), so memory does not
grow with the input's tokens.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from nemotron.common.atomic_files import write_atomic
from nemotron.common.data_sources import parse_sources
from nemotron.runtime.prep import chat, mix
from nemotron.runtime.prep import sft as sft_prep
from nemotron.runtime.prep import tokens as prep_tokens
from nemotron.runtime.prep.pair_spill import PairSpill
from nemotron.runtime.prep.pairs import Pair, parse_pair
from nemotron.runtime.prep.sources import expand_sources, plan_shards

FORMAT = "nemotron-dpo-1"
"""Version of the manifest layout."""
SIDES = ("chosen", "rejected")
Sample = Tuple[np.ndarray, np.ndarray]


@dataclass
class PairCounts:
    """What happened to the pairs read."""

    read: int = 0
    kept: int = 0
    dropped: Dict[str, int] = field(default_factory=lambda: {"too_long": 0, "no_answer_tokens": 0})
    truncated: int = 0
    identical: int = 0
    """Kept pairs whose two sides tokenize the same (they teach nothing: zero gradient)."""
    tokens: int = 0
    answer_tokens: int = 0


def _answer_mask(rendered: chat.Rendered, turns: int, offsets: Any) -> np.ndarray:
    """1 on the tokens of the answer's last `turns` generation blocks."""
    spans = rendered.spans[-turns:] if turns else ()
    return chat.token_mask(offsets, spans)


def _fit(ids: List[int], mask: np.ndarray, seq_length: int) -> Tuple[List[int], np.ndarray, bool]:
    if len(ids) <= seq_length + 1:
        return ids, mask, False
    return ids[: seq_length + 1], mask[: seq_length + 1], True


class PairEncoder:
    """Renders and tokenizes pairs with one tokenizer and template; counts what it keeps."""

    def __init__(self, spec: sft_prep.SftPrepSpec, tokenizer: Any, renderer: chat.ChatRenderer) -> None:
        self.spec, self.tok, self.renderer, self.counts = spec, tokenizer, renderer, PairCounts()
        self.per_source: Dict[int, PairCounts] = {}
        self.source = 0
        """The source of the pairs being encoded (their counts go to per_source too)."""
        self.selected: List[List[int]] = []
        """Per source: [pairs, tokens] in the final blend (after weighted sampling)."""

    def encode(self, pair: Pair, where: str) -> Optional[Tuple[Sample, Sample]]:
        """(chosen, rejected) as (ids, mask), or None when the pair is dropped (counted, also per source)."""
        mine = self.per_source.setdefault(self.source, PairCounts())
        before = asdict(self.counts)
        out = self._encode(pair, where)
        for key, value in asdict(self.counts).items():
            if key == "dropped":
                for why, n in value.items():
                    mine.dropped[why] += n - before["dropped"][why]
            else:
                setattr(mine, key, getattr(mine, key) + value - before[key])
        return out

    def _encode(self, pair: Pair, where: str) -> Optional[Tuple[Sample, Sample]]:
        c = self.counts
        c.read += 1
        rendered = [self.renderer.render(pair.conversation(s), where, pair.tools) for s in SIDES]
        encodings = self.tok.encode_batch([r.text for r in rendered], add_special_tokens=False)
        sides, cut = [], False
        for side, r, enc in zip(SIDES, rendered, encodings, strict=True):
            ids, mask, was_cut = _fit(
                enc.ids, _answer_mask(r, pair.answer_turns(side), enc.offsets), self.spec.seq_length
            )
            cut |= was_cut
            sides.append((np.asarray(ids, np.int32), mask))
        if cut and self.spec.overlong == "drop":
            c.dropped["too_long"] += 1
            return None
        if any(int(mask[1:].sum()) == 0 for _, mask in sides):
            c.dropped["no_answer_tokens"] += 1
            return None
        c.kept, c.truncated = c.kept + 1, c.truncated + int(cut)
        c.identical += int(np.array_equal(sides[0][0], sides[1][0]))
        c.tokens += sum(len(ids) for ids, _ in sides)
        c.answer_tokens += sum(int(mask[1:].sum()) for _, mask in sides)
        return sides[0], sides[1]


def _read_pairs(spec: sft_prep.SftPrepSpec, encoder: PairEncoder, spill: PairSpill) -> List[np.ndarray]:
    """Encode every pair into `spill` (by source, with its split); the pair indices each source gives
    the blend (weighted sources: mix.py), per source."""
    sources = parse_sources(spec.sources)
    files = expand_sources(spec.sources)
    text = [p for _, p in files if p.endswith(".txt")]
    if text:
        raise ValueError(f"data.sources: {text[0]}: DPO prep reads preference records (.jsonl, .parquet, ...)")
    bounds = np.cumsum(sft_prep.split_fractions(spec.split)).tolist()
    for shard in plan_shards(files, spec.docs_per_shard, spec.out_dir):
        encoder.source = shard.source_index
        for lineno, line in sft_prep.shard_lines(shard):
            where = f"{shard.path}:{lineno}"
            pair = parse_pair(line, where)
            sides = encoder.encode(pair, where) if pair is not None else None
            if sides is not None:
                split = sft_prep.split_of(spec.seed, shard.source_index, shard.path, lineno, bounds)
                spill.add(shard.source_index, split, *sides)
    spill.finish_writing()
    kept = [spill.kept(s) for s in range(len(sources))]
    targets = mix.target_counts(kept, sources)
    selected = [mix.select(kept[s], targets[s], spec.seed, s) for s in range(len(sources))]
    encoder.selected = [[len(p), spill.pair_tokens(s, p)] for s, p in enumerate(selected)]
    return selected


def _write_split(spec: sft_prep.SftPrepSpec, name: str, spill: PairSpill, selected: List[np.ndarray]) -> Dict[str, Any]:
    base = spec.out_dir / f"dpo-{name}"
    written = spill.write_split(str(base), sft_prep.SPLITS.index(name), selected)
    return {"prefix": base.name, "num_pairs": written["pairs"], "num_tokens": written["tokens"]}


def report_lines(report: Dict[str, Any]) -> List[str]:
    """The short terminal table of a DPO data report."""
    c = report["counts"]
    rows = [("pairs read", c["read"]), ("kept", c["kept"])]
    rows += [(f"dropped: {k.replace('_', ' ')}", v) for k, v in c["dropped"].items()]
    rows += [
        (f"truncated to {report['seq_length'] + 1} tokens", c["truncated"]),
        ("chosen == rejected (kept, no signal)", c["identical"]),
        ("tokens", c["tokens"]),
        ("answer tokens", c["answer_tokens"]),
    ]
    rows += [(f"{name}: pairs", s["num_pairs"]) for name, s in report["splits"].items()]
    width = max(len(k) for k, _ in rows)
    return [f"  {k:<{width}}  {v}" for k, v in rows]


def _tokenizer(spec: sft_prep.SftPrepSpec) -> Tuple[Any, str]:
    """The tokenizer (copied beside the manifest) and its sha1."""
    source = Path(spec.tokenizer_path)
    if not source.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {source} (data.tokenizer_path)")
    content = source.read_bytes()
    sha1 = hashlib.sha1(content).hexdigest()
    tok = prep_tokens.load_tokenizer(str(source), sha1)
    prep_tokens.eod_id(tok, spec.eod_token, str(source))
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    copy = spec.out_dir / "tokenizer.json"
    if not copy.is_file() or copy.read_bytes() != content:
        write_atomic(copy, content)
    return tok, sha1


def prepare_dpo(spec: sft_prep.SftPrepSpec, log: sft_prep.Log = print) -> Dict[str, Any]:
    """Check the template, encode every pair, write the splits, report and manifest; the report."""
    if spec.overlong not in sft_prep.OVERLONG:
        raise ValueError(f"data.overlong={spec.overlong!r} must be one of {', '.join(sft_prep.OVERLONG)}")
    sft_prep.split_fractions(spec.split)
    template, origin = chat.template_source(spec.chat_template, spec.tokenizer_path)
    renderer = chat.ChatRenderer(
        template, spec.eod_token, origin, chat.template_tokens(spec.tokenizer_path, spec.eod_token)
    )
    chat.check_template(renderer)  # before any write
    tok, tok_sha1 = _tokenizer(spec)
    encoder = PairEncoder(spec, tok, renderer)
    sources = parse_sources(spec.sources)
    with PairSpill(spec.out_dir, len(sources)) as spill:
        selected = _read_pairs(spec, encoder, spill)
        if encoder.counts.kept == 0:
            raise ValueError(
                f"data.sources {list(spec.sources)}: no preference pair kept "
                f"({encoder.counts.read} read, dropped {encoder.counts.dropped})"
            )
        splits = {
            name: _write_split(spec, name, spill, selected)
            for i, name in enumerate(sft_prep.SPLITS)
            if name == "train" or sum(len(p) for p in spill.picks(i, selected))
        }
    per_source = [asdict(encoder.per_source.get(i, PairCounts())) for i in range(len(sources))]
    rows = mix.source_rows(sources, per_source, [n for n, _ in encoder.selected], [t for _, t in encoder.selected])
    report = {"counts": asdict(encoder.counts), "seq_length": spec.seq_length, "splits": splits, "sources": rows}
    write_atomic(spec.out_dir / "report.json", json.dumps(report, indent=1).encode())
    template_sha1 = hashlib.sha1(template.encode()).hexdigest()
    manifest = sft_prep.manifest_of(FORMAT, spec, tok_sha1, template_sha1, origin, splits)
    write_atomic(spec.packed_file, json.dumps(manifest, indent=1).encode())
    log(f"dpo prep report ({spec.out_dir / 'report.json'}):")
    for line in report_lines(report):
        log(line)
    if len(rows) > 1 or rows[0]["asked_share"] is not None:
        for line in mix.mix_lines(rows, unit="pairs"):
            log(line)
    log(f"  peak memory (RSS)  {mix.peak_rss_mb()} MB")
    return report
