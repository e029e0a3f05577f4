"""One simulation of all four agencies, and the streams of events it yields per agency.

``simulated_events(agency, count, seed)`` is what ``govbus simulate`` publishes. The world always
simulates every agency and only the selected event types come out, so a seed and a population
describe one world whichever agency is asked for: with the same ``residents``, the localgov events
of ``--agency localgov`` are exactly the localgov events of ``--agency all``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from producers.simulators import benefits, budget, education, personnel, vehicles
from producers.simulators import residents as register
from producers.simulators.world import SimulatedEvent, World

AGENCIES = ("localgov", "education", "personnel", "finance")
EVENT_TYPES: tuple[str, ...] = (
    *register.TYPES,
    *vehicles.TYPES,
    *education.TYPES,
    *personnel.TYPES,
    *benefits.TYPES,
    *budget.TYPES,
)
# Events per onboarded resident in a run of RUN_YEARS (registration and backfill included), measured
# on three seeds with 6,000 residents; the default population is sized from them.
RUN_YEARS = 3.0
YIELDS = {
    register.REGISTERED: 1.04, register.MOVED: 0.67, register.DECEASED: 0.025, register.RELATION: 0.053,
    vehicles.REGISTERED: 0.37, vehicles.TRANSFERRED: 0.14,
    education.SCHOOL_REGISTERED: 0.015, education.ENROLLED: 0.18, education.TRANSFERRED: 0.028,
    education.GRADUATED: 0.081,
    personnel.APPOINTED: 0.039, personnel.PROMOTED: 0.088, personnel.TRANSFERRED: 0.067,
    personnel.RETIRED: 0.0058,
    benefits.GRANTED: 0.37, benefits.PAID: 9.0, benefits.SUSPENDED: 0.040,
    budget.ALLOCATED: 0.0099, budget.EXECUTED: 0.74,
}  # fmt: skip
MIN_RESIDENTS = 20
MAX_RESIDENTS = 50_000


def agency_types(agency: str) -> frozenset[str]:
    """The event types an agency publishes; ``all`` for every agency's."""
    if agency == "all":
        return frozenset(EVENT_TYPES)
    if agency not in AGENCIES:
        raise ValueError(f"unknown agency {agency!r}; expected one of {', '.join((*AGENCIES, 'all'))}")
    return frozenset(t for t in EVENT_TYPES if t.split(".")[1] == agency)


def default_residents(count: int, types: Iterable[str]) -> int:
    """A population that yields ``count`` events of ``types`` in about RUN_YEARS of simulated time.

    Every resident is registered in the first weeks, so a population much larger than the run would
    yield nothing but registrations, and a much smaller one would take decades to yield the count.
    """
    per_resident = sum(YIELDS.get(t, 0.0) for t in types)
    return min(max(math.ceil(count / max(per_resident, 1e-3)), MIN_RESIDENTS), MAX_RESIDENTS)


class Simulation:
    """A world with every agency simulator attached."""

    def __init__(self, seed: int, population: int, types: frozenset[str]) -> None:
        unknown = types - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"the simulators do not generate {', '.join(sorted(unknown))}")
        self.world = World(seed, types)
        register.ResidentRegistry(self.world, population)
        vehicles.VehicleRegister(self.world)
        education.SchoolSystem(self.world)
        personnel.CivilService(self.world)
        benefits.BenefitOffice(self.world)
        budget.Treasury(self.world)

    def events(self, count: int) -> Iterator[SimulatedEvent]:
        """The first ``count`` events of the selected types, in simulated-time order."""
        return self.world.run(count)


def simulated_events(
    agency: str, count: int, seed: int, residents: int | None = None
) -> Iterator[SimulatedEvent]:
    """``count`` events of ``agency`` (or ``all``), deterministic for ``seed`` and ``residents``."""
    return typed_events(agency_types(agency), count, seed, residents)


def typed_events(
    types: frozenset[str], count: int, seed: int, residents: int | None = None
) -> Iterator[SimulatedEvent]:
    """``count`` events of the given record types, deterministic for ``seed`` and ``residents``."""
    population = default_residents(count, types) if residents is None else residents
    return Simulation(seed, population, types).events(count)
