"""The models and part sizes of the TP=2 LoRA layout check (tp_lora_worker.py, test_lora_tp.py)."""

from __future__ import annotations

from typing import Any, List

MODELS = {
    "gpt_tiny": ["model.vocab_size=256"],
    "hybrid_tiny": ["model.vocab_size=256", "model.hybrid_layer_pattern=M*M-", "model.num_moe_experts=null"],
}
"""nano3_tiny without its MoE layer: Megatron's MoE at TP>1 needs sequence parallelism (TE)."""


def lora_config(name: str, tp: int) -> Any:
    """The conversion-side run config of model `name` at TP=`tp`, with adapters on every layer."""
    from nemotron.hf import megatron_side as ours

    option = "gpt_tiny" if name == "gpt_tiny" else "nano3_tiny"
    cfg = ours.run_config(ours.model_config(option, MODELS[name]), tp)
    targets = ["linear_qkv", "linear_proj", "linear_fc1", "linear_fc2", "in_proj", "out_proj"]
    cfg.peft = {"rank": 4, "alpha": 8.0, "dropout": 0.0, "method": "lora", "target_modules": targets}
    cfg.train = {"recompute": "none", "seed": 0}
    cfg.parallel.sequence_parallel = False
    return cfg


def part_sizes(cfg: Any, qualified: str, rows: int) -> List[int]:
    """Unsharded sizes of the parts stacked in the output rows of layer `qualified` (one part: [rows])."""
    m = cfg.model
    if qualified.endswith("mlp.linear_fc1") and str(getattr(m.activation, "value", m.activation)) == "swiglu":
        return [rows // 2, rows // 2]
    if qualified.endswith("mixer.in_proj"):
        heads = m.mamba_num_heads or 2 * m.hidden_size // m.mamba_head_dim  # Megatron's expand=2
        d, gn = heads * m.mamba_head_dim, m.mamba_num_groups * m.mamba_state_dim
        return [d, d, gn, gn, heads]
    return [rows]
