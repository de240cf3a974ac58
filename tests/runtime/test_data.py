"""nemotron.runtime.data.gpt: the generated tiny dataset, the tokenizer adapter, datasets and batches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from nemotron.config.schema import DataConfig
from nemotron.runtime.data import gpt as data
from runtime_support import process_group, tiny_data_dir  # noqa: F401 - fixtures


def _data_cfg(cache_dir: Path, **overrides):
    return OmegaConf.merge(OmegaConf.structured(DataConfig), {"cache_dir": str(cache_dir), **overrides})


@pytest.fixture(scope="module")
def tiny(tiny_data_dir, process_group):
    """(data config, tokenizer, prefix) of the session's generated tiny dataset."""
    cfg = _data_cfg(tiny_data_dir)
    tokenizer, prefixes, weights = data.resolve_data(cfg)
    assert len(prefixes) == 1 and weights is None
    return cfg, tokenizer, prefixes[0]


def _tiny_files(cfg) -> list[Path]:
    blend = data.tiny_blend_path(cfg)
    return [blend, blend.parent / "tokenizer.json", *sorted(blend.parent.glob("*_text_document.*"))]


def test_tiny_dataset_is_prepared_once_by_the_prep_path_and_reused(tmp_path, process_group):
    cfg = _data_cfg(tmp_path, num_documents=50)
    blend = data.prepare_tiny(cfg)
    files = _tiny_files(cfg)
    mtimes = [os.stat(f).st_mtime_ns for f in files]

    assert data.prepare_tiny(cfg) == blend
    assert [p.name for p in files[2:]] == [
        "corpus-00000_text_document.bin", "corpus-00000_text_document.done.json",
        "corpus-00000_text_document.idx"]
    assert [os.stat(f).st_mtime_ns for f in files] == mtimes
    assert len((blend.parent / "corpus.txt").read_text().splitlines()) == 50
    assert not [p for p in blend.parent.iterdir() if ".tmp" in p.name]


def test_interrupted_tiny_preparation_without_idx_is_redone(tmp_path, process_group):
    cfg = _data_cfg(tmp_path, num_documents=50)
    blend = data.prepare_tiny(cfg)
    tokenizer = blend.parent / "tokenizer.json"
    before = os.stat(tokenizer).st_mtime_ns
    next(blend.parent.glob("*.idx")).unlink()  # as if killed between writing .bin and .idx

    assert not data.tiny_is_complete(cfg)
    data.prepare_tiny(cfg)
    assert data.tiny_is_complete(cfg)
    assert os.stat(tokenizer).st_mtime_ns == before  # the trained tokenizer is reused


def test_corpus_is_deterministic_per_seed():
    assert data.generate_corpus(20, seed=1) == data.generate_corpus(20, seed=1)
    assert data.generate_corpus(20, seed=1) != data.generate_corpus(20, seed=2)


def test_tokenizer_round_trips_text_and_has_an_eod(tiny):
    _, tokenizer, _ = tiny
    text = "About the sea. Anna saw the blue boat near the harbor."

    assert tokenizer.detokenize(tokenizer.tokenize(text)) == text
    assert tokenizer.vocab_size == 512
    assert 0 <= tokenizer.eod < tokenizer.vocab_size
    assert tokenizer.eod not in tokenizer.tokenize(text)


def test_missing_prefix_error_names_the_path(tiny, tmp_path):
    cfg, tokenizer, _ = tiny
    missing = tmp_path / "nowhere" / "corpus_text_document"
    bad = _data_cfg(cfg.cache_dir, generate_tiny=False, prefixes=[str(missing)],
                    tokenizer_path=tokenizer.path)

    with pytest.raises(FileNotFoundError, match=str(missing) + ".bin"):
        data.resolve_data(bad)


def test_missing_tokenizer_error_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.tokenizer_path"):
        data.TokenizerAdapter(str(tmp_path / "tokenizer.json"))


def _run_cfg(data_cfg, steps=4):
    return OmegaConf.create({
        "data": data_cfg, "model": {"seq_length": 32},
        "train": {"steps": steps, "global_batch_size": 8, "eval_interval": 0, "eval_iters": 1},
    })


def test_batches_are_shifted_token_windows_split_across_data_parallel_ranks(tiny):
    cfg, tokenizer, prefix = tiny
    train_ds, valid_ds = data.build_datasets(_run_cfg(cfg), tokenizer, [prefix], None)
    assert valid_ds is None and len(train_ds) >= 4 * 8

    whole = next(data.batch_iterator(train_ds, micro_batch_size=4, dp_rank=0, dp_size=1))
    halves = [next(data.batch_iterator(train_ds, 2, rank, 2)) for rank in (0, 1)]

    assert whole["tokens"].shape == whole["labels"].shape == (4, 32)
    assert torch.equal(whole["tokens"][:, 1:], whole["labels"][:, :-1])
    assert torch.equal(torch.cat([h["tokens"] for h in halves]), whole["tokens"])
    assert set(whole) >= {"tokens", "labels", "loss_mask", "position_ids", "attention_mask"}


def test_data_sources_that_exclude_each_other_are_refused(tmp_path):
    both = _data_cfg(tmp_path, prefixes=[str(tmp_path / "a")], blend_file=str(tmp_path / "blend.json"))
    with pytest.raises(ValueError, match="data.prefixes and data.blend_file are both set"):
        data.resolve_data(both)
    with pytest.raises(ValueError, match="no training data: set data.prefixes, data.blend_file"):
        data.resolve_data(_data_cfg(tmp_path, generate_tiny=False))
