"""`python -m nemotron.checkpoint`: Hugging Face checkpoints in and out (see nemotron.hf and docs/hf.md)."""
