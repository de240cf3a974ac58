"""The Nemotron cookbook's command line (`nemotron <family> <stage> -c/-r/-b/-d`) and its env.toml profiles,
mapped onto the Hydra app: every command is a call of `python -m nemotron.train` (docs/cookbook.md).
Compose/launch layer: imports no torch, megatron or mlflow."""
