"""Peak extra anonymous memory of streamed HF import/export vs loading the same model whole.

    flock /tmp/nemotron-heavy.lock .venv/bin/python bench/hf_stream_memory.py [--layers 24]

Builds a random wide Llama (hidden 768, FFN 3072, 50 MB shards), then measures in this process:
the streamed import, the streamed export, and last the baseline (our model built and loaded whole
from the imported checkpoint, as a non-streaming converter must; last because memory it frees
stays in the heap and would hide the others' peaks); prints each and the ratio to the
baseline. No target is asserted here; tests/hf/test_streaming_memory.py holds the bound.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "hf"))

from memory_probe import peak_above_start, wide_llama  # noqa: E402

from nemotron.hf import exporter, importer  # noqa: E402
from nemotron.runtime.train import distributed  # noqa: E402


def _measure(work) -> int:
    gc.collect()
    _, peak = peak_above_start(work)
    distributed.teardown()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, reg = Path(tmp), str(Path(tmp) / "r.json")
        size = wide_llama(root / "wide", args.layers, 768, 3072, 50)
        imported = _measure(lambda: importer.import_hf(str(root / "wide"), None, [], str(root / "ck"), registry=reg))
        exported = _measure(
            lambda: exporter.export_hf(str(root / "ck"), str(root / "hf"), registry=reg, max_shard_bytes=50 << 20)
        )
        found, _, model = exporter.checkpoint_and_model(str(root / "ck"), None, [])
        whole = _measure(lambda: exporter.load_model(found, model))  # last: freed heap would hide later peaks
    mb = 1 << 20
    print(f"model weights: {size / mb:.0f} MB ({args.layers} layers)")
    print(f"baseline, whole model loaded: +{whole / mb:.0f} MB")
    print(f"streamed import: +{imported / mb:.0f} MB  ratio {imported / whole:.2f}")
    print(f"streamed export: +{exported / mb:.0f} MB  ratio {exported / whole:.2f}")


if __name__ == "__main__":
    main()
