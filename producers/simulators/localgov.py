"""Local-government activity: residents are registered, move and (rarely) die.

Deterministic for a seed: the same seed yields the same residents, events and event ids.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from producers.simulators.reference import REGIONS, address, korean_name, random_date, registration_number

FIRST_DAY = date(2024, 1, 1)


@dataclass(frozen=True)
class SimulatedEvent:
    """One event a simulator wants published."""

    type: str
    data: dict[str, Any]
    id: str
    time: datetime


class LocalGovSimulator:
    """Generates resident lifecycles: registration first, then moves; some residents die."""

    def __init__(self, seed: int = 42, residents: int = 100) -> None:
        self._rng = random.Random(seed)
        self._residents = residents
        self._seed = seed

    def events(self, count: int) -> Iterator[SimulatedEvent]:
        """Yield ``count`` events in an order a real registry could have produced them."""
        rng = self._rng
        alive: dict[str, dict[str, Any]] = {}
        clock = datetime(2024, 1, 1, 9, tzinfo=UTC)
        for _ in range(count):
            clock += timedelta(minutes=rng.randint(1, 90))
            if len(alive) < self._residents and (not alive or rng.random() < 0.4):
                event = self._registered(len(alive) + 1, clock)
                alive[event.data["resident_id"]] = event.data
            elif rng.random() < 0.02 and len(alive) > 1:
                resident_id = rng.choice(sorted(alive))
                alive.pop(resident_id)
                event = self._deceased(resident_id, clock)
            else:
                resident_id = rng.choice(sorted(alive))
                event = self._moved(resident_id, clock)
            yield SimulatedEvent(event.type, event.data, self._event_id(), clock)

    def _event_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _registered(self, number: int, clock: datetime) -> SimulatedEvent:
        rng = self._rng
        female = rng.random() < 0.5
        birth = random_date(rng, date(1940, 1, 1), date(2023, 12, 31))
        region = rng.choice(REGIONS)
        data = {
            "resident_id": f"R{self._seed % 100:02d}{number:010d}",
            "registration_number": registration_number(rng, birth, female),
            "name": korean_name(rng),
            "birth_date": birth,
            "sex": "FEMALE" if female else "MALE",
            "nationality": "KR",
            "address": address(rng, region),
            "registered_on": clock.date(),
            "registering_office": region.office_code,
        }
        return SimulatedEvent("govbus.localgov.ResidentRegistered", data, "", clock)

    def _moved(self, resident_id: str, clock: datetime) -> SimulatedEvent:
        rng = self._rng
        region = rng.choice(REGIONS)
        moved_on = clock.date() - timedelta(days=rng.randint(0, 13))
        data = {
            "resident_id": resident_id,
            "new_address": address(rng, region),
            "moved_on": moved_on,
            "reported_on": clock.date(),
            "receiving_office": region.office_code,
        }
        return SimulatedEvent("govbus.localgov.ResidentMoved", data, "", clock)

    def _deceased(self, resident_id: str, clock: datetime) -> SimulatedEvent:
        rng = self._rng
        region = rng.choice(REGIONS)
        data = {
            "resident_id": resident_id,
            "died_on": clock.date() - timedelta(days=rng.randint(0, 20)),
            "reported_on": clock.date(),
            "place_sido": region.sido,
            "place_sigungu": region.sigungu,
            "report_type": "DEATH_REPORT",
            "reporting_office": region.office_code,
        }
        return SimulatedEvent("govbus.localgov.ResidentDeceased", data, "", clock)
