"""The error a broken config rule raises (its own module, so the plugins that load at compose, such as
env.toml's, can raise it without importing the rules and the memory model)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A composed config breaks a cross-field rule; str() has one line per broken rule."""
