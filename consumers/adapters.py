"""The consumer adapters govbus runs, by name: the one table that routes ``govbus consume NAME``.

Each read model of :data:`consumers.projections.READ_MODELS` is one adapter: one consumer group per
store, one ``{adapter}.dlq`` topic, one set of tables.
"""

from __future__ import annotations

from collections.abc import Callable

from bus.errors import ConfigurationError
from consumers.projections import READ_MODELS
from consumers.readmodel import ReadModel

ADAPTERS: dict[str, Callable[[], ReadModel]] = dict(READ_MODELS)


def build_read_model(name: str) -> ReadModel:
    """The read model of adapter ``name``."""
    factory = ADAPTERS.get(name)
    if factory is None:
        raise ConfigurationError(f"unknown adapter {name!r}; known: {', '.join(ADAPTERS)}")
    return factory()
