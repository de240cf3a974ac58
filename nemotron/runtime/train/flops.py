"""Model FLOPs per token and MFU: what the progress line reports on a GPU.

Training FLOPs per token = 6 x (active matmul parameters) + 6 x (attention score/value work), the
usual accounting (PaLM appendix B; Megatron-LM's `num_floating_point_operations`):

- active matmul parameters: every 2-D weight that multiplies activations, except the input embedding
  (a lookup); routed-expert weights count top-k / num_experts of their size (a token visits k of
  them); a tied output layer counts the embedding matrix once more;
- attention: QK^T and AV cost 2 x 2 x seq x (heads x head dim) FLOPs per token and layer forward,
  halved for the causal mask;
- backward costs twice the forward (the 6 = 2 forward + 4 backward); recomputation is not counted
  (model FLOPs, not hardware FLOPs), so MFU does not reward recomputing.

MFU = achieved model FLOP/s per GPU / the device's dense bf16 peak.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from nemotron.common.hybrid_pattern import hybrid_pattern

PEAK_BF16_TFLOPS: Dict[str, float] = {
    "H200": 989.0,
    "H100": 989.0,
    "H800": 989.0,
    "GH200": 989.0,
    "B200": 2250.0,
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.0,
    "A10G": 125.0,
}
"""Dense bf16 tensor-core peak per GPU (NVIDIA datasheets; SXM parts), by name fragment."""


def active_matmul_params(model: Any, num_experts: Optional[int], topk: int) -> float:
    """Matmul parameters one token passes through (routed experts scaled by top-k / experts)."""
    total = 0.0
    for name, param in model.named_parameters():
        if param.dim() < 2 or "embedding" in name:
            continue
        scale = topk / num_experts if num_experts and ".experts." in name else 1.0
        total += param.numel() * scale
    return total


def flops_per_token(model: Any, cfg: Any, vocab_size: int) -> float:
    """Training FLOPs per token on this rank: its shard of the weights, its share of the heads.

    Each tensor/pipeline rank sees every token of its replica, so per-GPU FLOP/s is this number
    times the replica's tokens/s (global tokens/s / data-parallel size).
    """
    m, p = cfg.model, cfg.parallel
    tp, pp = p.tensor_model_parallel_size, p.pipeline_model_parallel_size
    params = active_matmul_params(model, m.num_moe_experts, m.moe_router_topk)
    has_output = any("output_layer" in name for name, _ in model.named_parameters())
    if m.share_embeddings_and_output_weights and not has_output:
        params += vocab_size * m.hidden_size / tp
    head_dim = m.kv_channels or m.hidden_size // m.num_attention_heads
    heads_per_rank = m.num_attention_heads / tp
    layers_per_stage = attention_layer_count(cfg) / pp
    attention = layers_per_stage * 2 * 2 * m.seq_length * heads_per_rank * head_dim * 0.5
    return 6.0 * params + 3.0 * attention


def attention_layer_count(cfg: Any) -> int:
    """Layers with self-attention: all of a GPT, the `*` layers of a hybrid pattern."""
    m = cfg.model
    if getattr(m.arch, "name", m.arch) == "hybrid":
        return hybrid_pattern(m).count("*")
    return m.num_layers


def device_peak_tflops(device_name: str) -> Optional[float]:
    """Dense bf16 peak of a GPU by its CUDA name ('NVIDIA H200' -> 989), None when unknown."""
    upper = device_name.upper()
    for fragment, peak in PEAK_BF16_TFLOPS.items():
        if fragment in upper.replace("-", " ").split() or fragment in upper:
            return peak
    return None


def mfu(tokens_per_s_per_gpu: float, flops_token: float, peak_tflops: Optional[float]) -> Optional[float]:
    """Model FLOPs utilisation in [0, 1], or None without a known peak."""
    if not peak_tflops:
        return None
    return tokens_per_s_per_gpu * flops_token / (peak_tflops * 1e12)


def gpu_flops(cfg: Any, model: Any, tokenizer_vocab: int) -> Tuple[Optional[float], Optional[float]]:
    """(FLOPs per token on this rank, device peak TFLOP/s) on a GPU; (None, None) on CPU."""
    import torch

    from nemotron.runtime.model.build import padded_vocab_size

    if not torch.cuda.is_available():
        return None, None
    vocab = padded_vocab_size(cfg.model, tokenizer_vocab, cfg.parallel.tensor_model_parallel_size)
    return flops_per_token(model, cfg, vocab), device_peak_tflops(torch.cuda.get_device_name())


def perf_text(run: Any, tokens_per_s: float) -> Tuple[str, Dict[str, float]]:
    """' | 312.4 TFLOP/s/GPU | MFU 31.6%' and the matching metrics, for a GPU run; ('', {}) on CPU."""
    if not run.flops_per_token:
        return "", {}
    per_gpu = run.flops_per_token * tokens_per_s / run.info.data_parallel_size / 1e12
    text, metrics = f" | {per_gpu:.1f} TFLOP/s/GPU", {"tflops_per_gpu": per_gpu}
    if run.peak_tflops:
        metrics["mfu"] = per_gpu / run.peak_tflops
        text += f" | MFU {metrics['mfu'] * 100:.1f}%"
    return text, metrics
