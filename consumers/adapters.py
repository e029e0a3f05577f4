"""The consumer adapters govbus runs, by name: the one table that routes ``govbus consume NAME``."""

from __future__ import annotations

from collections.abc import Callable

from bus.errors import ConfigurationError
from consumers.projections.residents import ResidentProjection
from consumers.runtime import Projection

ADAPTERS: dict[str, Callable[[], Projection]] = {
    "residents": ResidentProjection,
}


def build_projection(name: str) -> Projection:
    """The projection of adapter ``name``."""
    factory = ADAPTERS.get(name)
    if factory is None:
        raise ConfigurationError(f"unknown adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}")
    return factory()
