"""Hydra plugin package: env.toml profiles as `cluster` options (see envtoml_plugin.py)."""
