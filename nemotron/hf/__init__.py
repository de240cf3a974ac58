"""The checkpoint tools of `python -m nemotron.checkpoint` (the CLI: `cli`): Hugging Face checkpoints in and
out of Megatron-Core: config mapping (`configmap`), tensor mapping (`mapping`), safetensors files
(`st_files`), our model and checkpoint (`megatron_side`), `importer`, `exporter`, logit checks
(`verify`), LoRA adapters in PEFT format (`peft_export`); and the tools that write a new checkpoint from
others: `merge_lora` (adapters folded into their base) and `average` (the mean of checkpoints).
They build on the runtime below; nothing in the runtime imports them. transformers beyond plain calls
goes through `nemotron.runtime.transformers_compat`."""
