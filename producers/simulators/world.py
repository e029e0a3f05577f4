"""The one world every agency simulator acts in: a seeded rng, a clock, an agenda and a population.

The world is a discrete-event simulation. Everything that will happen is an entry on one agenda
(a heap ordered by simulated time, ties broken by insertion order), so events come out in clock
order and every date inside a payload agrees with the clock and with the resident's life: a child
enrols in the March after turning six because that enrolment was scheduled for that March. Agency
simulators own their state, schedule their own entries and react to each other through three hooks
(a resident was registered, moved, died) instead of calling each other.

Facts the world knows in advance (the day a resident will die) are drawn when the resident appears;
every handler checks them, so nothing happens to a resident on or after the day of death except
what the death report itself sets in motion inside the world: an inheritance of their vehicles.
The other agencies' reactions to a death (a suspended benefit, a retirement for death in service)
are not simulated; the reaction adapters of ``consumers.reactions`` publish them from the bus.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, NamedTuple

from producers.simulators.reference import KST, YEAR_DAYS, Region

EPOCH = datetime(2024, 1, 1, tzinfo=KST)
EPOCH_DAY = EPOCH.date().toordinal()
DAY = 86_400
OPENING = 9 * 3600
OFFICE_HOURS = 9 * 3600
OFFICE_YEAR = 261 * OFFICE_HOURS
_EPOCH_MS = int(EPOCH.timestamp() * 1000)
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}

Arrival = Literal["onboarded", "born", "immigrated"]
"""How a resident entered the bus: already registered before govbus, newly born, or arrived from abroad."""

Handler = Callable[[Any], None]


class SimulatedEvent(NamedTuple):
    """One event a simulator wants published: its record full name, payload, CloudEvents id and time.

    A named tuple rather than a frozen dataclass: generators create one per event and the tuple is
    three times cheaper to build.
    """

    type: str
    data: dict[str, Any]
    id: str
    time: datetime

    @property
    def agency(self) -> str:
        """The publishing agency, the record namespace's last segment (``govbus.<agency>.<Record>``)."""
        return self.type.split(".", 2)[1]


@dataclass(eq=False, slots=True)
class Resident:
    """A person in the resident registry, with the facts other agencies need to stay consistent."""

    id: str
    name: str
    born: date
    female: bool
    dies: int
    """Ordinal day of death: drawn at registration; the resident does nothing from that day on."""
    address: dict[str, Any]
    region: Region
    settled: int
    """Ordinal day the current address took effect; a later move cannot predate it."""
    married: bool = False
    spouse: Resident | None = None
    children: list[Resident] = field(default_factory=list)
    parents: tuple[Resident, ...] = ()
    slot: int = -1

    def years_on(self, day: int) -> float:
        """Approximate age in years on an ordinal day (for sampling, not for legal age limits)."""
        return (day - self.born.toordinal()) / YEAR_DAYS


class World:
    """Clock, agenda, population and event output shared by all agency simulators."""

    def __init__(self, seed: int, selected: frozenset[str]) -> None:
        self.rng = random.Random(seed)
        self._seed = seed
        self._ids: dict[str, Callable[[int], int]] = {}
        self.prefix = f"{seed % 10_000:04d}"
        self.now = 0
        self.day = EPOCH_DAY
        self.living: list[Resident] = []
        self.registered: list[Callable[[Resident, Arrival], None]] = []
        self.moved: list[Callable[[Resident, Region], None]] = []
        self.died: list[Callable[[Resident], None]] = []
        self._selected = selected
        # Entries are (time << 40 | insertion number, handler, subject): one integer orders the heap,
        # which is faster to compare than a (time, number) pair and never reaches the handler.
        self._agenda: list[tuple[int, Handler, Any]] = []
        self._order = itertools.count()
        self._serials: dict[str, itertools.count[int]] = {}
        self._out: list[SimulatedEvent] = []
        self._time_at = -1
        self._time = EPOCH

    # -- time ------------------------------------------------------------------------------------

    @property
    def today(self) -> date:
        """The simulated date."""
        return date.fromordinal(self.day)

    @property
    def time(self) -> datetime:
        """The simulated time, Korea Standard Time (computed once per clock tick)."""
        if self._time_at != self.now:
            self._time_at = self.now
            self._time = EPOCH + timedelta(seconds=self.now)
        return self._time

    def at(self, when: int, handler: Handler, subject: Any = None) -> None:
        """Run ``handler(subject)`` at ``when`` seconds after the epoch (never before now)."""
        heapq.heappush(self._agenda, (max(when, self.now) << 40 | next(self._order), handler, subject))

    def on(self, day: int, handler: Handler, subject: Any = None) -> None:
        """Run ``handler(subject)`` during office hours of ``day`` (the next weekday if it is a weekend).

        When that moment has passed already, the handler runs shortly after now instead.
        """
        weekday = (day - 1) % 7
        if weekday >= 5:
            day += 7 - weekday
        draw = self.rng.random()
        when = (day - EPOCH_DAY) * DAY + OPENING + int(draw * OFFICE_HOURS)
        if when <= self.now:
            when = self.now + 1 + int(draw * 3600)
        heapq.heappush(self._agenda, (when << 40 | next(self._order), handler, subject))

    def within(self, days: float, handler: Handler, subject: Any = None) -> None:
        """Run ``handler(subject)`` on an office day up to ``days`` from today (today excluded)."""
        self.on(self.day + 1 + int(self.rng.random() * days), handler, subject)

    def recur(self, rate: float, handler: Handler, subject: Any = None) -> None:
        """Run ``handler(subject)`` at the next arrival of a Poisson process of ``rate`` a year.

        The process runs on office time (weekdays, 09:00-18:00), so however high the rate, every
        occurrence still falls in office hours.
        """
        # The epoch is a Monday, so office time counts five days in every seven from it.
        days, seconds = divmod(self.now, DAY)
        weeks, weekday_ = divmod(days, 7)
        position = (weeks * 5 + min(weekday_, 5)) * OFFICE_HOURS
        if weekday_ < 5:
            position += min(max(seconds - OPENING, 0), OFFICE_HOURS)
        position += 1 + int(self.rng.expovariate(rate) * OFFICE_YEAR)
        office_days, seconds = divmod(position, OFFICE_HOURS)
        weeks, weekday_ = divmod(office_days, 5)
        when = (weeks * 7 + weekday_) * DAY + OPENING + seconds
        heapq.heappush(self._agenda, (max(when, self.now + 1) << 40 | next(self._order), handler, subject))

    # -- population ------------------------------------------------------------------------------

    def add(self, resident: Resident) -> None:
        """Count ``resident`` among the living."""
        resident.slot = len(self.living)
        self.living.append(resident)

    def remove(self, resident: Resident) -> None:
        """Take ``resident`` off the living in O(1), moving the last one into the gap."""
        last = self.living.pop()
        if last is not resident:
            self.living[resident.slot] = last
            last.slot = resident.slot
        resident.slot = -1

    def alive(self, resident: Resident) -> bool:
        """Whether ``resident`` is still alive today."""
        return self.day < resident.dies

    def find(self, accept: Callable[[Resident], bool], tries: int = 40) -> Resident | None:
        """A random living resident ``accept`` takes, by rejection sampling (None when unlucky)."""
        living = self.living
        if not living:
            return None
        rng = self.rng
        for _ in range(tries):
            candidate = living[int(rng.random() * len(living))]
            if self.day < candidate.dies and accept(candidate):
                return candidate
        return None

    def next_id(self, letter: str, digits: int = 8) -> str:
        """The next id of a kind: its letter, the world's 4-digit prefix and a serial number."""
        serial = self._serials.get(letter)
        if serial is None:
            serial = self._serials[letter] = itertools.count(1)
        number = str(next(serial))
        return letter + self.prefix + "0" * (digits - len(number)) + number

    # -- output ----------------------------------------------------------------------------------

    def selects(self, event_type: str) -> bool:
        """Whether events of ``event_type`` are wanted from this run."""
        return event_type in self._selected

    def stream(self, name: str) -> random.Random:
        """A generator of its own, derived from the seed, for a process the rest of the world ignores.

        Drawing from it leaves the world's generator untouched, so such a process can be skipped
        when its events are not selected without changing anything else the world does.
        """
        return random.Random(f"{self._seed}:{name}")

    def emit(self, event_type: str, data: dict[str, Any]) -> str:
        """Record an event now and return its id: a version 7 UUID of the simulated time.

        Each event type draws the random part of its ids from a stream of its own: ids then never
        depend on which other types were simulated, and drawing them leaves the world's generator
        untouched. The time part (milliseconds since 1970, as RFC 9562 lays out version 7) makes ids
        grow with time, as the SDK's do, so a consumer's index of applied ids grows at its end.
        """
        bits = self._ids.get(event_type)
        if bits is None:
            bits = self._ids[event_type] = self.stream(event_type).getrandbits
        t = f"{_EPOCH_MS + int(self.now * 1000):012x}"
        h = bits(80).to_bytes(10).hex()
        event_id = f"{t[:8]}-{t[8:]}-7{h[1:4]}-{_VARIANT[h[4]]}{h[5:8]}-{h[8:]}"
        if event_type in self._selected:
            # ``self.time`` inlined: this is the hottest line of a run.
            if self._time_at != self.now:
                self._time_at = self.now
                self._time = EPOCH + timedelta(seconds=self.now)
            self._out.append(SimulatedEvent(event_type, data, event_id, self._time))
        return event_id

    def run(self, count: int) -> Iterator[SimulatedEvent]:
        """Advance the clock until ``count`` selected events have happened, yielding them in order."""
        agenda, out, pop = self._agenda, self._out, heapq.heappop
        produced = 0
        while produced < count and agenda:
            key, handler, subject = pop(agenda)
            when = key >> 40
            if when != self.now:
                self.now = when
                self.day = EPOCH_DAY + when // DAY
            handler(subject)
            if out:
                for event in out:
                    yield event
                    produced += 1
                    if produced == count:
                        break
                out.clear()
