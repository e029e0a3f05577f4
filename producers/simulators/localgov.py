"""The resident-register view of the simulated world, for code that only wants localgov.resident events.

``LocalGovSimulator`` predates the four-agency world and keeps its interface: registrations first,
then moves, and deaths, all keyed by resident id on the one topic the residents read model
consumes. It is a filter on the shared world, not a separate simulation. The whole local
government output (family relations and vehicles too) is ``simulated_events("localgov", ...)``.
"""

from __future__ import annotations

from collections.abc import Iterator

from producers.simulators.residents import RESIDENT_TYPES
from producers.simulators.simulation import typed_events
from producers.simulators.world import SimulatedEvent

__all__ = ["LocalGovSimulator", "SimulatedEvent"]


class LocalGovSimulator:
    """Resident lifecycles (localgov.resident): registration first, then moves; some residents die."""

    def __init__(self, seed: int = 42, residents: int | None = None) -> None:
        self._seed = seed
        self._residents = residents

    def events(self, count: int) -> Iterator[SimulatedEvent]:
        """Yield ``count`` events in an order a real registry could have produced them."""
        return typed_events(frozenset(RESIDENT_TYPES), count, self._seed, self._residents)
