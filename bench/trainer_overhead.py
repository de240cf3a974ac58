"""Trainer overhead: tokens/s of our recipe against a raw Megatron-Core loop (same model, data).

    python bench/trainer_overhead.py [--rounds 3] [--steps 20] [--tiny] [override ...]

Ours is `nemotron.runtime.pretrain.run` on the composed `+recipe=gpt/pretrain` config (progress
lines, LR schedule, loss all-reduce, the jsonl tracker logging every step; MLflow's own cost is not
this benchmark's subject, and no checkpoint is saved). The baseline is the loop of
Megatron-LM's examples/run_simple_mcore_train_loop.py written against Megatron-Core directly:
TransformerConfig + GPTModel (local spec) -> DistributedDataParallel -> get_megatron_optimizer ->
get_forward_backward_func -> optimizer.step, fed by a DataLoader over the same GPTDataset, with the
same seed (the first losses must agree). Both run in this process, alternately, `--rounds` times,
1 thread; each side's tokens/s counts the steps after the first (setup and step 1 excluded).
Prints each side's best and median and, last, the ratio ours / raw of the best rounds (the
timeit convention: other load on the machine only slows a round down), medians alongside. Target:
>= 0.97.

Default model: a GPT of ~3.6M parameters (4 layers, hidden 256, seq 256, 2 micro-batches of 4 per
step); `--tiny` uses model=gpt_tiny unchanged. Extra arguments are config overrides for both sides.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import torch
import torch.distributed as dist
from omegaconf import OmegaConf

from nemotron.config.compose import compose_run
from nemotron.runtime import cpu_compat
from nemotron.runtime.stages import pretrain
from nemotron.runtime.data import gpt as data

SMALL_GPT = ["model.num_layers=4", "model.hidden_size=256", "model.num_attention_heads=8",
             "model.num_query_groups=4", "model.ffn_hidden_size=768", "model.seq_length=256",
             "train.micro_batch_size=4", "train.global_batch_size=8"]
"""The default benchmark model: big enough that a step is compute, not Python."""


def resolved_config(overrides: List[str], work: Path) -> Any:
    base = ["+recipe=gpt/pretrain", "train.num_threads=1", "checkpoint.save_at_end=false",
            "tracker=jsonl", f"paths.output_root={work}", f"data.cache_dir={work / 'data'}"]
    cfg = compose_run([*base, *overrides], run_dir=work / "run")
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


# ---- the raw Megatron-Core loop ------------------------------------------------------------------


def raw_model(cfg: Any, vocab_size: int) -> Any:
    from megatron.core.models.gpt import GPTModel
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.transformer.transformer_config import TransformerConfig

    m = cfg.model
    config = TransformerConfig(
        num_layers=m.num_layers, hidden_size=m.hidden_size,
        num_attention_heads=m.num_attention_heads,
        num_query_groups=m.num_query_groups, ffn_hidden_size=m.ffn_hidden_size,
        normalization="RMSNorm", gated_linear_unit=True, activation_func=torch.nn.functional.silu,
        add_bias_linear=False, init_method_std=m.init_method_std, hidden_dropout=0.0,
        attention_dropout=0.0, use_cpu_initialization=True, pipeline_dtype=torch.float32)
    spec = get_gpt_layer_local_spec(normalization="RMSNorm")
    return GPTModel(config=config, transformer_layer_spec=spec,
                    vocab_size=vocab_size, max_sequence_length=m.seq_length,
                    position_embedding_type="rope", rotary_base=m.rotary_base,
                    share_embeddings_and_output_weights=m.share_embeddings_and_output_weights)


def raw_forward_step(data_iterator: Iterator, model: Any) -> Tuple[torch.Tensor, Any]:
    def loss_func(loss_mask: torch.Tensor, output: torch.Tensor) -> Tuple[torch.Tensor, Dict]:
        mask = loss_mask.view(-1).float()
        loss = torch.sum(output.float().view(-1) * mask) / mask.sum()
        return loss, {"lm loss": loss.detach().clone()}  # the schedule scales `loss` in place

    batch = next(data_iterator)
    output = model(batch["tokens"], batch["position_ids"], batch.get("attention_mask"),
                   labels=batch["labels"])
    return output, partial(loss_func, batch["loss_mask"])


def raw_setup(cfg: Any) -> Tuple[Any, Any, Iterator]:
    """(DDP model, Megatron optimizer, micro-batch iterator), built as the Megatron-LM example."""
    from megatron.core.distributed import (DistributedDataParallel, DistributedDataParallelConfig,
                                           finalize_model_grads)
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
    from torch.utils.data import DataLoader

    cpu_compat.install()
    tokenizer, prefixes, weights = data.resolve_data(cfg.data)
    train_ds, _ = data.build_datasets(cfg, tokenizer, prefixes, weights)
    cpu_compat.seed_model_parallel(cfg.train.seed)
    model = raw_model(cfg, vocab_size=-(-tokenizer.vocab_size // 128) * 128)
    config = model.config
    ddp_config = DistributedDataParallelConfig(
        grad_reduce_in_fp32=True, overlap_grad_reduce=False, use_distributed_optimizer=False)
    model = DistributedDataParallel(config=config, module=model, ddp_config=ddp_config)
    config.no_sync_func, config.finalize_model_grads_func = model.no_sync, finalize_model_grads
    o = cfg.optim
    with cpu_compat.cuda_as_cpu():  # FP32Optimizer allocates on "cuda"
        optimizer = get_megatron_optimizer(OptimizerConfig(
            optimizer="adam", lr=o.lr, weight_decay=o.weight_decay, adam_beta1=o.adam_beta1,
            adam_beta2=o.adam_beta2, adam_eps=o.adam_eps, clip_grad=o.clip_grad), [model])
    return model, optimizer, iter(DataLoader(train_ds, batch_size=cfg.train.micro_batch_size))


def raw_loop(cfg: Any) -> Tuple[float, float]:
    """(tokens/s after the first step, first-step loss) of the bare Megatron-Core loop."""
    from megatron.core import parallel_state
    from megatron.core.pipeline_parallel import get_forward_backward_func

    with socket.socket() as sock:  # a free port: other jobs may share this machine
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    parallel_state.initialize_model_parallel(1, 1)
    try:
        model, optimizer, batches = raw_setup(cfg)
        mbs, gbs = cfg.train.micro_batch_size, cfg.train.global_batch_size
        seq = cfg.model.seq_length
        forward_backward = get_forward_backward_func()
        first_loss, start = 0.0, 0.0
        for step in range(cfg.train.steps):
            model.zero_grad_buffer()
            optimizer.zero_grad()
            losses = forward_backward(forward_step_func=raw_forward_step, data_iterator=batches,
                                      model=model, num_microbatches=gbs // mbs, seq_length=seq,
                                      micro_batch_size=mbs, forward_only=False)
            with cpu_compat.cuda_as_cpu():  # clip_grads asserts CUDA tensor types
                optimizer.step()
            if step == 0:
                first_loss = sum(float(x["lm loss"]) for x in losses) / len(losses)
                start = time.perf_counter()
        return gbs * seq * (cfg.train.steps - 1) / (time.perf_counter() - start), first_loss
    finally:
        parallel_state.destroy_model_parallel()
        dist.destroy_process_group()


# ---- side by side --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--tiny", action="store_true", help="model=gpt_tiny, not the ~3.6M GPT")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if not cpu_compat.on_cpu():
        raise SystemExit("bench/trainer_overhead.py compares fp32 CPU runs; this machine has CUDA")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        model = [] if args.tiny else SMALL_GPT
        cfg = resolved_config([*model, f"train.steps={args.steps}", *args.overrides], Path(tmp))
        ours, raw = [], []
        for round_ in range(1, args.rounds + 1):
            result = pretrain.run(cfg)
            rate, first_loss = raw_loop(cfg)
            ours.append(result.tokens_per_s)
            raw.append(rate)
            print(f"round {round_}: ours {ours[-1]:,.0f} tokens/s, raw {raw[-1]:,.0f} tokens/s | "
                  f"first loss ours {result.losses[0]:.6f} raw {first_loss:.6f}", flush=True)
    tokens = cfg.train.global_batch_size * cfg.model.seq_length
    print(f"model {cfg.model.num_layers} layers x {cfg.model.hidden_size}, {tokens} tokens/step, "
          f"{args.steps} steps, 1 thread, {args.rounds} rounds alternating")
    for name, rates in (("raw Megatron-Core loop", raw), ("nemotron pretrain.run ", ours)):
        print(f"{name}: best {max(rates):,.0f} tokens/s, median {statistics.median(rates):,.0f}")
    print(f"ratio ours / raw: {max(ours) / max(raw):.3f} best of {args.rounds} "
          f"(medians: {statistics.median(ours) / statistics.median(raw):.3f})")


if __name__ == "__main__":
    main()
