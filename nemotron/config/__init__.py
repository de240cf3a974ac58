"""Config schemas, resolvers and validation: the compose layer (no torch, megatron or mlflow)."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from nemotron.config.resolvers import register_resolvers
from nemotron.config.schema import RunConfig

SCHEMA_NAME = "nemotron_schema"
"""Name under which RunConfig is stored; conf/config.yaml lists it first in its defaults."""


def register_configs() -> None:
    """Put the schema in Hydra's ConfigStore and register resolvers (idempotent: storing the schema
    converts every dataclass, a tenth of a second, so it happens once per process)."""
    register_resolvers()
    store = ConfigStore.instance()
    if f"{SCHEMA_NAME}.yaml" not in store.repo:
        store.store(name=SCHEMA_NAME, node=RunConfig)


register_configs()
