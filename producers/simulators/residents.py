"""The resident and family registers (localgov.resident, localgov.family): who lives, where, with whom.

Residents enter the bus three ways: the existing registry is onboarded during the first weeks,
babies are born to residents, and a trickle of people arrive from abroad (which also keeps a small
world from dying out on a long run). Adults move house with their spouse and minor children;
women marry and have children at Korean rates; everyone's day of death is drawn from a Gompertz
life table when they appear, and the death report follows within days of it.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect
from collections.abc import Callable
from datetime import date

from producers.simulators.reference import (
    REGIONS,
    YEAR_DAYS,
    Region,
    address,
    age_on,
    anniversary,
    given_name,
    korean_name,
    registration_number,
    surname,
)
from producers.simulators.world import EPOCH_DAY, Arrival, Resident, World

REGISTERED = "govbus.localgov.ResidentRegistered"
MOVED = "govbus.localgov.ResidentMoved"
DECEASED = "govbus.localgov.ResidentDeceased"
RELATION = "govbus.localgov.FamilyRelationRegistered"
RESIDENT_TYPES = (REGISTERED, MOVED, DECEASED)
TYPES = (*RESIDENT_TYPES, RELATION)

ONBOARDING_DAYS = 30
ADULT = 19
# Share of the population by ten-year age band (Statistics Korea, 2024, rounded).
AGE_BANDS = (6.4, 9.2, 12.6, 13.2, 15.4, 16.8, 14.5, 7.6, 3.6, 0.7)
_AGE_CUMULATIVE = tuple(itertools.accumulate(AGE_BANDS))
# Gompertz mortality, hazard a * exp(b * age): b = 0.1 and a fitted to life expectancy 80.6 / 86.4.
GOMPERTZ_B = 0.1
GOMPERTZ_A = {False: 1.78e-5, True: 9.95e-6}
MAX_AGE = 110
# Households move about every four to five years; each adult's clock moves the spouse and minor
# children too, so people move more often than that. Children of residents outside the simulated
# population move on their own clock: it stands for their unseen parents'.
MOVE_RATE = 0.22
SAME_SIGUNGU = 0.55
MARRIAGE_RATE = 0.12
BIRTH_RATE = 0.05
FERTILE_YEARS = (24, 41)
IMMIGRATION_RATE = 0.01


class ResidentRegistry:
    """Registers, moves, marries and buries the world's residents."""

    def __init__(self, world: World, residents: int) -> None:
        self.world = world
        self._initial = max(residents, 1)
        rng = world.rng
        for _ in range(residents):
            world.on(EPOCH_DAY + int(rng.random() * ONBOARDING_DAYS), self._onboard)
        self._next_arrival()

    # -- arrivals --------------------------------------------------------------------------------

    def _onboard(self, _: object) -> None:
        self._register(self._person(self._sample_age()), "onboarded")

    def _arrive(self, _: object) -> None:
        self._next_arrival()
        self._register(self._person(self._sample_age()), "immigrated")

    def _next_arrival(self) -> None:
        self.world.recur(max(self._initial * IMMIGRATION_RATE, 0.2), self._arrive)

    def _sample_age(self) -> float:
        rng = self.world.rng
        band = bisect(_AGE_CUMULATIVE, rng.random() * _AGE_CUMULATIVE[-1])
        return band * 10 + rng.random() * 10

    def _person(self, age: float) -> Resident:
        world, rng = self.world, self.world.rng
        female = rng.random() < 0.51
        born = date.fromordinal(world.day - max(int(age * YEAR_DAYS), 1))
        region = REGIONS[int(rng.random() * len(REGIONS))]
        resident = Resident(
            id=world.next_id("R"),
            name=korean_name(rng, female, born.year),
            born=born,
            female=female,
            dies=world.day + self._remaining_days(age, female),
            address=address(rng, region),
            region=region,
            settled=world.day,
        )
        if age >= 26:
            resident.married = rng.random() < min(0.85, (age - 24) / 14)
        return resident

    def _remaining_days(self, age: float, female: bool) -> int:
        """Days left to live, drawn from the Gompertz law conditional on having reached ``age``."""
        u = 1.0 - self.world.rng.random()
        years = math.log(1 - GOMPERTZ_B * math.log(u) / (GOMPERTZ_A[female] * math.exp(GOMPERTZ_B * age)))
        return 1 + int(min(years / GOMPERTZ_B, max(MAX_AGE - age, 0.01)) * YEAR_DAYS)

    def _register(self, resident: Resident, arrival: Arrival) -> None:
        world = self.world
        world.emit(
            REGISTERED,
            {
                "resident_id": resident.id,
                "registration_number": registration_number(world.rng, resident.born, resident.female),
                "name": resident.name,
                "birth_date": resident.born,
                "sex": "FEMALE" if resident.female else "MALE",
                "nationality": "KR",
                "address": resident.address,
                "registered_on": world.today,
                "registering_office": resident.region.office_code,
            },
        )
        world.add(resident)
        report = resident.dies + int(world.rng.expovariate(1 / 4))
        world.on(min(report, resident.dies + 30), self._report_death, resident)
        self._plan_life(resident)
        for hook in world.registered:
            hook(resident, arrival)

    def _plan_life(self, resident: Resident) -> None:
        """Start the resident's move, marriage and birth clocks."""
        world = self.world
        self._schedule(resident, world.day, MOVE_RATE, self._move)
        if resident.female and not resident.married:
            start = anniversary(resident.born, 26).toordinal()
            self._schedule(resident, max(world.day, start), MARRIAGE_RATE, self._marry)
        if resident.female:
            start = anniversary(resident.born, FERTILE_YEARS[0]).toordinal()
            self._schedule(resident, max(world.day, start), BIRTH_RATE, self._give_birth)

    def _schedule(
        self, resident: Resident, start: int, rate: float, handler: Callable[[Resident], None]
    ) -> None:
        """Book the next occurrence of a per-resident process; nothing is booked past death."""
        # An exponential waiting time, inlined: this runs several times per registration.
        day = start + int(-math.log(1.0 - self.world.rng.random()) / rate * YEAR_DAYS)
        if day < resident.dies:
            self.world.on(day, handler, resident)

    # -- life events -----------------------------------------------------------------------------

    def _move(self, resident: Resident) -> None:
        world = self.world
        if not world.alive(resident):
            return
        self._schedule(resident, world.day, MOVE_RATE, self._move)
        if self._minor(resident) and any(world.alive(p) for p in resident.parents):
            return  # a child moves when a parent does
        rng = world.rng
        household = [resident]
        spouse = resident.spouse
        if spouse is not None and world.alive(spouse):
            household.append(spouse)
        for parent in tuple(household):
            household.extend(c for c in parent.children if world.alive(c) and self._minor(c))
        region = resident.region if rng.random() < SAME_SIGUNGU else REGIONS[int(rng.random() * len(REGIONS))]
        new_address = address(rng, region)
        settled = max(member.settled for member in household)
        moved_on = min(max(world.day - int(rng.random() * 14), settled + 1), world.day)
        for member in dict.fromkeys(household):
            self._relocate(member, new_address, region, moved_on)

    def _relocate(self, resident: Resident, new_address: dict[str, object], region: Region, day: int) -> None:
        world = self.world
        old_region = resident.region
        resident.address, resident.region, resident.settled = dict(new_address), region, day
        world.emit(
            MOVED,
            {
                "resident_id": resident.id,
                "new_address": resident.address,
                "moved_on": date.fromordinal(day),
                "reported_on": world.today,
                "receiving_office": region.office_code,
            },
        )
        for hook in world.moved:
            hook(resident, old_region)

    def _marry(self, bride: Resident) -> None:
        world = self.world
        if not world.alive(bride) or bride.married:
            return
        age = bride.years_on(world.day)
        if age > 45:
            return
        groom = world.find(
            lambda m: not m.female and not m.married and age - 2 <= m.years_on(world.day) <= age + 6
        )
        if groom is None:
            self._schedule(bride, world.day, MARRIAGE_RATE, self._marry)
            return
        bride.married = groom.married = True
        bride.spouse, groom.spouse = groom, bride
        self._relate(bride, groom, "SPOUSE", "MARRIAGE_REPORT")
        self._relate(groom, bride, "SPOUSE", "MARRIAGE_REPORT")
        # The couple sets up house at the husband's address, reported on the same visit; her
        # children move with her.
        minors = [c for c in bride.children if world.alive(c) and self._minor(c)]
        for member in (bride, *minors):
            self._relocate(member, groom.address, groom.region, world.day)

    def _give_birth(self, mother: Resident) -> None:
        world = self.world
        if not world.alive(mother) or mother.years_on(world.day) >= FERTILE_YEARS[1]:
            return
        self._schedule(mother, world.day, BIRTH_RATE, self._give_birth)
        rng = world.rng
        father = mother.spouse if mother.spouse is not None and world.alive(mother.spouse) else None
        born = date.fromordinal(max(world.day - 2 - int(rng.random() * 25), mother.settled))
        female = rng.random() < 0.49
        family_name = father.name[0] if father is not None else surname(rng)
        baby = Resident(
            id=world.next_id("R"),
            name=family_name + given_name(rng, female, born.year),
            born=born,
            female=female,
            dies=world.day + self._remaining_days(0.0, female),
            address=dict(mother.address),
            region=mother.region,
            settled=world.day,
            parents=(mother,) if father is None else (mother, father),
        )
        mother.children.append(baby)
        if father is not None:
            father.children.append(baby)
        self._register(baby, "born")
        for parent in (mother, father):
            if parent is not None:
                self._relate(baby, parent, "PARENT", "BIRTH_REPORT")
                self._relate(parent, baby, "CHILD", "BIRTH_REPORT")

    def _relate(self, principal: Resident, relative: Resident, relation: str, cause: str) -> None:
        self.world.emit(
            RELATION,
            {
                "resident_id": principal.id,
                "relation_id": self.world.next_id("F"),
                "relative_resident_id": relative.id,
                "relation": relation,
                "cause": cause,
                "registered_on": self.world.today,
                "registering_office": principal.region.office_code,
            },
        )

    def _report_death(self, resident: Resident) -> None:
        world = self.world
        world.remove(resident)
        rng = world.rng
        died_on = date.fromordinal(resident.dies)
        report_type = "DEATH_REPORT" if rng.random() < 0.93 else "OFFICIAL_NOTICE"
        # Most Koreans die in hospital, often near home; a share die elsewhere.
        place = resident.region if rng.random() < 0.8 else REGIONS[int(rng.random() * len(REGIONS))]
        world.emit(
            DECEASED,
            {
                "resident_id": resident.id,
                "died_on": died_on,
                "reported_on": max(world.today, died_on),
                "place_sido": place.sido,
                "place_sigungu": place.sigungu,
                "report_type": report_type,
                "reporting_office": resident.region.office_code,
            },
        )
        for hook in world.died:
            hook(resident)

    def _minor(self, resident: Resident) -> bool:
        return age_on(resident.born, self.world.today) < ADULT
