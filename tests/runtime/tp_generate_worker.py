"""One rank of the TP=2-versus-TP=1 generation check (tests/runtime/test_generate_tp.py starts it).

    python -m torch.distributed.run --nproc-per-node 2 tests/runtime/tp_generate_worker.py OUT_DIR

For each model it builds the TP=1 model from the seed on both ranks (DP=2), saves its weights as a
distributed checkpoint, samples greedy and seeded continuations of fixed prompts, then rebuilds the
model at TP=2 (vocabulary-parallel logits, split attention / MLP / Mamba heads), loads the same
checkpoint (Megatron reshards it) and samples again. Each rank writes what it sampled to
OUT_DIR/rank<r>.json; the test compares. Weights come through the checkpoint because Megatron draws
the Mamba mixer's conv/dt/A initial values per tensor-parallel rank (different numbers at TP=2).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

# The repo first, as `python -m` would have it: Hydra finds the project's plugins (hydra_plugins/).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from runtime_support import resolved_run_config  # noqa: E402 - after the path

VOCAB = 300
"""The tokenizer's vocabulary; model.vocab_size=512 pads it alike at TP=1 and TP=2."""
MODELS = {
    "gpt_tiny": ["model=gpt_tiny"],
    "hybrid_tiny": [
        "model=nano3_tiny",
        "model.hybrid_layer_pattern=M*M*",
        "model.num_moe_experts=null",
    ],
}
"""nano3_tiny without its MoE layer: Megatron's MoE at TP>1 needs sequence parallelism, which
needs Transformer Engine (not on this CPU)."""
SAMPLINGS = {
    "greedy": {"temperature": 0.0, "seed": 0},
    "sampled": {"temperature": 1.0, "top_p": 0.9, "seed": 3},
}


def prompts() -> list[list[int]]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randint(1, VOCAB, (n,), generator=gen).tolist() for n in (5, 9) for _ in range(3)]


def build(overrides: list[str], tp: int, run_dir: Path):
    from megatron.core import parallel_state

    from nemotron.runtime import cpu_compat
    from nemotron.runtime.model.build import build_model

    cfg = resolved_run_config(
        [
            "+recipe=gpt/pretrain",
            *overrides,
            "model.vocab_size=512",
            "tracker=none",
            f"parallel.tensor_model_parallel_size={tp}",
            f"checkpoint.dir={run_dir / 'ck'}",
        ],
        run_dir=run_dir,
    )
    if parallel_state.model_parallel_is_initialized():
        cpu_compat.destroy_model_parallel_groups()
    parallel_state.initialize_model_parallel(tensor_model_parallel_size=tp)
    cpu_compat.seed_model_parallel(7)
    model, _ = build_model(cfg, VOCAB)
    return cfg, model.eval()


def sample_all(model) -> dict[str, list[list[int]]]:
    from nemotron.runtime.model.generate import SamplingSettings, generate

    out = {}
    for name, how in SAMPLINGS.items():
        settings = SamplingSettings(max_new_tokens=12, eos=VOCAB + 50, vocab_size=VOCAB, **how)
        out[name] = generate(model, prompts(), settings).responses
    return out


def one_model(name: str, overrides: list[str], root: Path, measure=None) -> dict[str, dict]:
    """`measure` (default: sample_all) of the TP=1 model, then of the TP=2 model loaded from its weights."""
    from megatron.core.utils import unwrap_model

    from nemotron.common.checkpoint_index import latest
    from nemotron.runtime.checkpoint import store as checkpoint

    _, tp1 = build(overrides, 1, root / name)
    path = checkpoint.write_weights({"model": unwrap_model(tp1).sharded_state_dict()}, str(root / name / "ck"), 0, {})
    measure = measure or sample_all
    results = {"tp1": measure(tp1)}
    cfg, tp2 = build(overrides, 2, root / name)
    found = latest(str(root / name / "ck"))
    assert found is not None and Path(found.path) == path, (found, path)
    checkpoint.load_weights(found, cfg, tp2, say=False)
    results["tp2"] = measure(tp2)
    return results


def main(out_dir: str, measure=None) -> None:
    """Run every model of MODELS through one_model on this rank; write OUT_DIR/rank<r>.json."""
    import torch.distributed as dist

    from nemotron.runtime.train import distributed

    torch.set_num_threads(1)
    distributed.init_process_group()
    rank = dist.get_rank()
    root = Path(out_dir)
    results = {name: one_model(name, overrides, root, measure) for name, overrides in MODELS.items()}
    (root / f"rank{rank}.json").write_text(json.dumps(results))
    distributed.teardown()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
