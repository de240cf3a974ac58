"""Hugging Face checkpoints in and out of Megatron-Core: config mapping (`configmap`), tensor mapping
(`mapping`), safetensors files (`st_files`), our model and checkpoint (`megatron_side`), `importer`,
`exporter`, logit checks (`verify`) and the CLI (`cli`, run as `python -m nemotron.checkpoint`).
The only module touching transformers beyond plain calls is `transformers_compat`."""
