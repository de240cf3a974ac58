"""Peak anonymous memory (RssAnon: what the kernel cannot drop, unlike file-backed or mapped pages)
of a piece of work, sampled every millisecond from /proc/self/status. Shared by the streaming test
and bench/hf_stream_memory.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Tuple

_STATUS = Path("/proc/self/status")


def rss_anon_bytes() -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


def peak_above_start(work: Callable[[], Any]) -> Tuple[Any, int]:
    """(work()'s result, peak RssAnon during it minus RssAnon before it), in bytes."""
    start, peak, done = rss_anon_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon_bytes())
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = work()
    finally:
        done.set()
        thread.join()
    return result, max(peak[0], rss_anon_bytes()) - start


def wide_llama(path: Path, layers: int, hidden: int, ffn: int, shard_mb: int) -> int:
    """A random LlamaForCausalLM of `layers` wide layers saved in shards of `shard_mb`; its weight bytes."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 128,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        max_position_embeddings=128,
    )
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    model.save_pretrained(path, max_shard_size=f"{shard_mb}MB")
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    del model
    return size


def layer_bytes(hidden: int, ffn: int) -> int:
    """fp32 bytes of one Llama layer of `wide_llama` (q, k, v, o, gate, up, down, two norms)."""
    return 4 * (2 * hidden * hidden + 2 * hidden * hidden // 2 + 3 * hidden * ffn + 2 * hidden)
