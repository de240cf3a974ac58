"""Generation tokens/s of the RL sampler (KV cache, Mamba state) vs a plain greedy loop of full forwards.

    python bench/rl_generation.py [--model gpt_tiny|nano3_tiny] [--new-tokens 128] [--batch 8]

Same model (random weights, seeded), same prompts, greedy: ours is `generate(..., use_cache=True)`
(prefill once, then one position a token through Megatron's static inference context); the baseline
re-runs the whole sequence for every new token and takes the argmax (`use_cache=False`, which the
test suite checks gives the same tokens). Prints both rates and the ratio (target >= 3 at 128 new
tokens). CPU, 1 thread unless --threads.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "runtime")]  # hydra_plugins, runtime_support


def _model(name: str, seq_length: int, vocab: int):
    from megatron.core import parallel_state
    from runtime_support import resolved_run_config

    from nemotron.runtime import cpu_compat
    from nemotron.runtime.model.build import build_model
    from nemotron.runtime.train import distributed

    distributed.init_process_group()
    parallel_state.initialize_model_parallel(1, 1)
    cpu_compat.install()
    cpu_compat.seed_model_parallel(1234)
    cfg = resolved_run_config(
        ["+recipe=gpt/pretrain", f"model={name}", "tracker=none", f"model.seq_length={seq_length}"],
        run_dir=Path(tempfile.mkdtemp()),
    )
    return build_model(cfg, vocab)[0].eval()


def _rate(model, prompts, new_tokens: int, vocab: int, use_cache: bool, repeats: int) -> float:
    from nemotron.runtime.model.generate import SamplingSettings, generate

    s = SamplingSettings(
        max_new_tokens=new_tokens, eos=vocab + 1, vocab_size=vocab, temperature=0.0, use_cache=use_cache
    )
    generate(model, prompts[:1], SamplingSettings(max_new_tokens=2, eos=vocab + 1, vocab_size=vocab))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = generate(model, prompts, s)
        best = min(best, time.perf_counter() - start)
    assert out.num_tokens() == new_tokens * len(prompts)
    return out.num_tokens() / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt_tiny")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vocab = 512
    model = _model(args.model, args.prompt_tokens + args.new_tokens, vocab)
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(0, vocab, (args.batch, args.prompt_tokens), generator=gen).tolist()
    ours = _rate(model, prompts, args.new_tokens, vocab, True, args.repeats)
    base = _rate(model, prompts, args.new_tokens, vocab, False, args.repeats)
    print(f"model {args.model} | batch {args.batch} | prompt {args.prompt_tokens} | new {args.new_tokens} tokens")
    print(f"ours (KV cache / Mamba state): {ours:,.0f} tokens/s")
    print(f"baseline (full forward per token): {base:,.0f} tokens/s")
    print(f"ratio ours / baseline: {ours / base:.2f} (target >= 3)")


if __name__ == "__main__":
    main()
