"""nemotron.runtime.prep.text: text/JSONL -> .bin/.idx shards in parallel, resume, blend files, the recipe."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from nemotron.config.schema import DataConfig
from nemotron.common import blend as blend_io
from nemotron.runtime.data import gpt as data
from nemotron.runtime.prep import text as prep
from runtime_support import process_group  # noqa: F401 - fixture

WEB_DOCS, NOTES_DOCS, DOCS_PER_SHARD = 250, 130, 100


def _web_text(i: int) -> str:
    return f"Page {i}: the {['red', 'blue', 'green'][i % 3]} fox\njumps over {i * 7} lazy dogs, twice."


def _note_text(i: int) -> str:
    return f"Note {i} says the harbor is {'calm' if i % 2 else 'busy'} today ü."


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """web.jsonl (250 docs, a blank line and an empty text among them) and notes.txt (130 lines)."""
    root = tmp_path_factory.mktemp("corpus")
    lines = [json.dumps({"text": _web_text(i), "id": i}) for i in range(WEB_DOCS)]
    lines[10:10] = ["", json.dumps({"text": ""})]
    (root / "web.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    notes = [_note_text(i) for i in range(NOTES_DOCS)]
    (root / "notes.txt").write_text("\n".join(notes[:5] + ["   "] + notes[5:]) + "\n", encoding="utf-8")
    return root


def _documents() -> list[str]:
    return [_web_text(i) for i in range(WEB_DOCS)] + [_note_text(i) for i in range(NOTES_DOCS)]


def _spec(corpus: Path, out: Path, **overrides) -> prep.PrepSpec:
    fields = dict(sources=[str(corpus / "*.jsonl"), str(corpus / "notes.txt")], blend_file=out / "blend.json",
                  vocab_size=300, num_workers=2, docs_per_shard=DOCS_PER_SHARD)
    return prep.PrepSpec(**{**fields, **overrides})


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    """The corpus prepared once with 2 workers: (spec, result)."""
    spec = _spec(corpus, tmp_path_factory.mktemp("prepared"))
    return spec, prep.prepare(spec, log=PREP_LINES.append)


PREP_LINES: list[str] = []
"""What the `prepared` run logged."""


def _indexed(prefix: str):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    return IndexedDataset(prefix, mmap=True)


def test_two_workers_write_shards_whose_tokens_match_the_tokenizer(prepared):
    from tokenizers import Tokenizer

    spec, result = prepared
    blend = blend_io.read_blend(spec.blend_file)
    tok = Tokenizer.from_file(blend.tokenizer_path)
    eod = tok.token_to_id(prep.EOD_TOKEN)
    expected = [e.ids + [eod] for e in tok.encode_batch(_documents())]

    assert [Path(p).name for p in blend.prefixes] == [
        f"web-0000{i}_text_document" for i in range(3)] + [f"notes-0000{i}_text_document" for i in range(2)]
    assert result.num_shards == 5 and result.num_skipped == 0
    assert sum(blend.num_tokens) == result.num_tokens == result.encoded_tokens == sum(map(len, expected))
    written = [np.asarray(doc).tolist() for p in blend.prefixes for doc in _indexed(p)]
    assert written == expected
    assert blend.weights == pytest.approx([n / sum(blend.num_tokens) for n in blend.num_tokens])
    assert tok.get_vocab_size() == blend.vocab_size == 300


def test_each_finished_shard_line_has_the_token_rate_and_an_eta(prepared):
    shards = [line for line in PREP_LINES if line.startswith("prep: [")]
    assert shards and all(
        re.fullmatch(r"prep: \[\d+/\d+\] \S+: \d+ docs, \d+ tokens \| [\d,.]+ tokens/s \| ETA \d+:\d\d:\d\d", line)
        for line in shards
    ), shards
    assert shards[-1].endswith("ETA 0:00:00")


def test_the_tokenizer_trainer_ends_with_a_progress_line_through_preps_log(tmp_path):
    from nemotron.runtime.prep.tokens import train_bpe

    lines = []
    train_bpe(iter(_documents()), 300, "<|endoftext|>", tmp_path / "tokenizer.json", lines.append)
    assert len(lines) == 1
    assert re.fullmatch(rf"tokenizer: {len(_documents())} docs in [\d.]+ s \([\d,.]+ docs/s\)", lines[0])


def test_rerun_skips_finished_shards_and_redoes_a_deleted_one(prepared):
    spec, _ = prepared
    out = spec.out_dir
    files = sorted(p for p in out.iterdir() if p.is_file() and p.name != "blend.json")
    mtimes = {p: os.stat(p).st_mtime_ns for p in files}
    blend_before = spec.blend_file.read_text()

    again = prep.prepare(spec, log=lambda line: None)
    assert (again.num_skipped, again.encoded_tokens) == (5, 0)
    assert {p: os.stat(p).st_mtime_ns for p in files} == mtimes

    lost = out / "web-00001_text_document.idx"
    lost.unlink()  # as if the worker died before renaming its .idx
    resumed = prep.prepare(spec, log=lambda line: None)
    assert resumed.num_skipped == 4 and 0 < resumed.encoded_tokens < resumed.num_tokens
    assert lost.is_file() and spec.blend_file.read_text() == blend_before
    redone = {p for p in files if os.stat(p).st_mtime_ns != mtimes[p]}
    assert {p.name for p in redone} == {f"web-00001_text_document{ext}" for ext in (".bin", ".idx", ".done.json")}


def test_blend_file_feeds_a_weighted_two_prefix_blend_to_training(prepared, corpus, tmp_path, process_group):
    spec, _ = prepared
    tokenizer = spec.out_dir / "tokenizer.json"
    weighted = _spec(corpus, tmp_path / "weighted", tokenizer_path=str(tokenizer), num_workers=1,
                     docs_per_shard=10_000, source_weights=[3, 1])
    prep.prepare(weighted, log=lambda line: None)
    data_cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), {
        "generate_tiny": False, "blend_file": str(weighted.blend_file), "tokenizer_path": str(tokenizer),
        "cache_dir": str(tmp_path / "cache"), "split": "90,10,0"})

    tok, prefixes, weights = data.resolve_data(data_cfg)
    assert [Path(p).name for p in prefixes] == ["web-00000_text_document", "notes-00000_text_document"]
    assert weights == pytest.approx([0.75, 0.25]) and tok.vocab_size == 300
    cfg = OmegaConf.create({"data": data_cfg, "model": {"seq_length": 16}, "train": {
        "steps": 50, "global_batch_size": 8, "eval_interval": 10, "eval_iters": 1}})
    train_ds, valid_ds = data.build_datasets(cfg, tok, prefixes, weights)
    drawn = np.bincount(train_ds.dataset_index, minlength=2) / len(train_ds.dataset_index)
    assert drawn == pytest.approx([0.75, 0.25], abs=0.02)
    assert len(valid_ds) >= 6 * 8 and train_ds[0]["tokens"].shape == (16,)


def test_blend_naming_a_missing_prefix_names_the_path(prepared, tmp_path):
    spec, _ = prepared
    moved = tmp_path / "blend.json"
    moved.write_text(spec.blend_file.read_text())  # its relative prefixes now point into tmp_path
    data_cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), {"blend_file": str(moved)})

    with pytest.raises(FileNotFoundError, match=str(tmp_path / "web-00000_text_document.bin")):
        data.resolve_data(data_cfg)


def test_bad_inputs_fail_naming_file_line_or_key(corpus, tmp_path):
    quiet = dict(log=lambda line: None)
    with pytest.raises(FileNotFoundError, match=r"data.sources\[1\]: .*missing\*.jsonl: no such file"):
        prep.prepare(_spec(corpus, tmp_path, sources=[str(corpus / "notes.txt"), str(tmp_path / "missing*.jsonl")]),
                     **quiet)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"body": "no text"}\n')
    with pytest.raises(ValueError, match=rf"{bad}:2: no string field 'text' \(data.text_key\)"):
        prep.prepare(_spec(corpus, tmp_path / "out", sources=[str(bad)], num_workers=1), **quiet)
    with pytest.raises(ValueError, match="data.source_weights has 1 entries for 2 data.sources"):
        prep.prepare(_spec(corpus, tmp_path / "out", source_weights=[1.0]), **quiet)
    with pytest.raises(FileNotFoundError, match=r"data.blend_file: .*nowhere.json not found"):
        blend_io.read_blend(tmp_path / "nowhere.json")


@pytest.mark.slow
def test_prep_recipe_runs_end_to_end_through_the_entry_point(cli, corpus, tmp_path):
    cache = tmp_path / "cache"
    result = cli("+recipe=data/prep", f"paths.cache_dir={cache}", "data.num_workers=2",
                 f"data.sources=[{corpus}/web.jsonl,{corpus}/notes.txt]", "data.docs_per_shard=200",
                 timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "encoding 3 on 2 workers" in result.stdout
    assert re.search(r"^outputs: \S+ \(config.yaml, train.log\)$", result.stdout, re.M), result.stdout  # no checkpoints/
    blend = blend_io.read_blend(cache / "data" / "prepared" / "blend.json")
    assert [Path(p).name for p in blend.prefixes] == [
        "web-00000_text_document", "web-00001_text_document", "notes-00000_text_document"]
    assert sum(blend.num_tokens) > WEB_DOCS + NOTES_DOCS and blend_io.missing_files(blend) == []
