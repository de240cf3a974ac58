"""The layer names a LoRA adapter can wrap (standard library only): the `peft` config group checks
`peft.target_modules` against them at compose, the runtime wraps the layers they name."""

from __future__ import annotations

TARGETS = ("linear_qkv", "linear_proj", "linear_fc1", "linear_fc2", "in_proj", "out_proj")
"""Layer names an adapter can wrap: attention qkv/output, MLP fc1/fc2, Mamba in/out projections."""
