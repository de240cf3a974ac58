"""Import and export stream: on a random Llama of ~400 MB in 50 MB shards, the extra anonymous
memory at the peak stays near one shard plus one layer, well below the model's size (a converter
holding the whole model could not pass). bench/hf_stream_memory.py compares with loading it whole."""

from __future__ import annotations

import gc

import pytest
from hf_support import llama_dir
from memory_probe import layer_bytes, peak_above_start, wide_llama

from nemotron.hf import exporter, importer
from nemotron.runtime.train import distributed

LAYERS, HIDDEN, FFN, SHARD_MB = 12, 768, 3072, 50
SLACK = 96 << 20
"""Allocator, metadata, and the writers' per-tensor copies."""


def _warm_up(tmp_path) -> None:
    """Import and export a tiny model first, so the modules' own memory is not counted."""
    tiny = llama_dir(tmp_path / "tiny", tied=False)
    importer.import_hf(str(tiny), None, [], str(tmp_path / "tiny-ck"), registry=str(tmp_path / "r.json"))
    distributed.teardown()
    exporter.export_hf(str(tmp_path / "tiny-ck"), str(tmp_path / "tiny-hf"), registry=str(tmp_path / "r.json"))
    distributed.teardown()


@pytest.mark.slow
def test_import_and_export_peak_memory_is_one_shard_plus_one_layer(tmp_path):
    model_bytes = wide_llama(tmp_path / "wide", LAYERS, HIDDEN, FFN, SHARD_MB)
    _warm_up(tmp_path)
    gc.collect()
    bound = 2 * layer_bytes(HIDDEN, FFN) + (SHARD_MB << 20) + SLACK
    assert bound < 0.6 * model_bytes  # the bound tells streaming from holding the model
    registry = str(tmp_path / "r.json")
    _, imported = peak_above_start(
        lambda: importer.import_hf(str(tmp_path / "wide"), None, [], str(tmp_path / "ck"), registry=registry)
    )
    distributed.teardown()
    gc.collect()
    _, exported = peak_above_start(
        lambda: exporter.export_hf(
            str(tmp_path / "ck"), str(tmp_path / "hf"), registry=registry, max_shard_bytes=SHARD_MB << 20
        )
    )
    distributed.teardown()
    mb = 1 << 20
    print(
        f"model {model_bytes / mb:.0f} MB, bound {bound / mb:.0f} MB, "
        f"import peak +{imported / mb:.0f} MB, export peak +{exported / mb:.0f} MB"
    )
    assert imported < bound and exported < bound
