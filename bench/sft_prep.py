"""SFT prep speed: tokens/s per worker of `sft_prep.prepare_sft` against the tokenizer's encode_batch.

    python bench/sft_prep.py [--conversations 20000] [--rounds 3]

Ours: `+recipe=data/prep_sft`'s `prepare_sft` with one worker on a JSONL of synthetic chats (the
generator of data=sft_tiny, 1-3 turns each): parse, render with the default Jinja template,
`encode_batch` with offsets, mask, shard files, pack (best-fit decreasing), report. Baseline: the
same tokenizer's `encode_batch` (one thread) over the same conversations already rendered, in
memory. Both count the same tokens; each round runs both, the best round of each side is compared
(the timeit convention), medians alongside; prep's peak RSS (each round in this process: the
largest) is printed too. Prints the ratio ours / baseline last. Target >= 0.8 (issue 28).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core each side

from nemotron.runtime.prep import chat, mix
from nemotron.runtime.data import sft as sft_data
from nemotron.runtime.prep import sft as sft_prep  # noqa: E402
from nemotron.runtime.prep.text import EOD_TOKEN  # noqa: E402
from nemotron.runtime.prep.tokens import train_bpe  # noqa: E402


def _baseline(texts, tokenizer_path) -> float:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    start, tokens = time.perf_counter(), 0
    for i in range(0, len(texts), sft_prep.RENDER_BATCH):
        tokens += sum(len(e.ids) for e in tok.encode_batch(texts[i:i + sft_prep.RENDER_BATCH]))
    return tokens / (time.perf_counter() - start)


def _ours(work: Path, source: Path, tokenizer_path: Path, round_: int) -> float:
    spec = sft_prep.SftPrepSpec(sources=[str(source)], tokenizer_path=str(tokenizer_path),
                                packed_file=work / f"out{round_}" / "sft.json", seq_length=1024,
                                num_workers=1, docs_per_shard=5000)
    start = time.perf_counter()
    report = sft_prep.prepare_sft(spec, log=lambda line: None)
    return report["counts"]["tokens"] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        chats = sft_data.generate_conversations(args.conversations, seed=1)
        source = work / "chats.jsonl"
        source.write_text("".join(json.dumps(c) + "\n" for c in chats))
        tokenizer_path = work / "tokenizer.json"
        renderer = chat.ChatRenderer(chat.DEFAULT_TEMPLATE, EOD_TOKEN)
        texts = [renderer.render(c["messages"], "bench").text for c in chats]
        train_bpe(texts[:2000], 512, EOD_TOKEN, tokenizer_path)
        ours, base = [], []
        for r in range(args.rounds):
            base.append(_baseline(texts, tokenizer_path))
            ours.append(_ours(work, source, tokenizer_path, r))
            print(f"round {r + 1}: prepare_sft {ours[-1]:,.0f} tokens/s, encode_batch {base[-1]:,.0f}")
    print(f"peak memory (RSS, this process and its prep workers): {mix.peak_rss_mb()} MB")
    print(f"prepare_sft (1 worker): best {max(ours):,.0f}, median {statistics.median(ours):,.0f} tokens/s")
    print(f"encode_batch (1 thread): best {max(base):,.0f}, median {statistics.median(base):,.0f} tokens/s")
    print(f"ratio ours/baseline: {max(ours) / max(base):.3f} best, "
          f"{statistics.median(ours) / statistics.median(base):.3f} median (target >= 0.8)")


if __name__ == "__main__":
    main()
