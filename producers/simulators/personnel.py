"""The civil service (personnel.civil-servant): appointments, promotions, transfers and retirements.

Some residents are destined for the civil service: they are appointed between 20 and 40 through
the open examinations (grade 9, 7 or 5), career recruitment or a fixed-term contract; they climb
one grade every few years up to a career ceiling, are rotated every year or two, and leave
at the statutory age of 60 (on 30 June or 31 December of that year), earlier by resignation or
honorary retirement. A career ends with its official's death, but the retirement a death in service
calls for is not simulated here: it is personnel's reaction to the death report on the bus
(``consumers.reactions.personnel``). Serving officials onboarded with the resident register reach
the bus with their historical appointment and promotions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from producers.simulators.reference import MINISTRIES, YEAR_DAYS, age_on, anniversary
from producers.simulators.world import Arrival, Resident, World

APPOINTED = "govbus.personnel.CivilServantAppointed"
PROMOTED = "govbus.personnel.CivilServantPromoted"
TRANSFERRED = "govbus.personnel.CivilServantTransferred"
RETIRED = "govbus.personnel.CivilServantRetired"
TYPES = (APPOINTED, PROMOTED, TRANSFERRED, RETIRED)

# About 3% of Koreans are civil servants; a larger share keeps personnel events visible in a small world.
CAREER_CHANCE = 0.08
RETIREMENT_AGE = 60
ROTATION_YEARS = 1.5
RESIGNATION_YEARS = 80.0
HONORARY_YEARS = 25.0
DISMISSAL_YEARS = 1500.0
# Typical years spent in a grade before promotion to the next (grade 9 lowest, 1 highest).
YEARS_IN_GRADE = {9: 2.0, 8: 3.0, 7: 5.5, 6: 8.0, 5: 7.0, 4: 6.0, 3: 5.0, 2: 4.0}
GENERAL_SERIES = ("행정",) * 10 + (
    "세무",
    "세무",
    "전산",
    "전산",
    "사회복지",
    "사회복지",
    "보건",
    "공업",
    "시설",
)
SPECIALIZED = (("1320000", "경찰"), ("1661000", "소방"), ("1342000", "교육"))
MINISTRY_CODES = tuple(MINISTRIES)


@dataclass(frozen=True)
class Track:
    """A way into the service: recruitment type, entry grade, appointment ages and career ceilings."""

    appointment_type: str
    grade: int
    ages: tuple[float, float, float]
    """Youngest, oldest and most common age at appointment."""
    ceilings: tuple[int, ...]
    ceiling_weights: tuple[int, ...]


TRACKS = (
    Track("OPEN_COMPETITIVE", 9, (21, 33, 27), (6, 5, 4), (45, 45, 10)),
    Track("OPEN_COMPETITIVE", 7, (24, 34, 28), (5, 4, 3), (50, 40, 10)),
    Track("OPEN_COMPETITIVE", 5, (24, 32, 27), (4, 3, 2), (40, 40, 20)),
    Track("CAREER_COMPETITIVE", 6, (28, 40, 34), (5, 4, 3), (60, 35, 5)),
    Track("CONTRACT", 6, (30, 40, 35), (6,), (1,)),
)
TRACK_WEIGHTS = (55, 22, 5, 13, 5)


@dataclass(eq=False, slots=True)
class CivilServant:
    """A civil servant's record and career plan."""

    id: str
    resident: Resident
    track: Track
    service_type: str
    job_series: str
    organization: str
    grade: int
    ceiling: int
    appointed: int
    leaves: int
    """Ordinal day of statutory retirement (or the end of a fixed term)."""
    promotion: int = 0
    """Ordinal day of the next promotion; 0 once the career ceiling is reached."""
    active: bool = False


class CivilService:
    """Appoints, promotes, rotates and retires civil servants."""

    def __init__(self, world: World) -> None:
        self.world = world
        world.registered.append(self._resident_registered)

    def _resident_registered(self, resident: Resident, arrival: Arrival) -> None:
        world, rng = self.world, self.world.rng
        if rng.random() >= CAREER_CHANCE * (0.3 if arrival == "immigrated" else 1.0):
            return
        track = rng.choices(TRACKS, weights=TRACK_WEIGHTS)[0]
        low, high, mode = track.ages
        appointed = anniversary(resident.born, int(rng.triangular(low, high, mode))).toordinal()
        appointed += int(rng.random() * 365)
        servant = self._servant(resident, track, appointed)
        if appointed > world.day:
            world.on(appointed, self._appoint, servant)
        elif servant.leaves > world.day and arrival == "onboarded":
            # The personnel system's record reaches the bus a few days after the resident register's.
            world.within(14, self._backfill, servant)

    def _servant(self, resident: Resident, track: Track, appointed: int) -> CivilServant:
        rng = self.world.rng
        born = resident.born
        leaves = date(born.year + RETIREMENT_AGE, 6, 30)
        if born.month > 6:
            leaves = date(born.year + RETIREMENT_AGE, 12, 31)
        if track.appointment_type == "CONTRACT":
            leaves = min(leaves, anniversary(date.fromordinal(appointed), 2 + int(rng.random() * 4)))
        if rng.random() < 0.18:
            organization, series = SPECIALIZED[int(rng.random() * len(SPECIALIZED))]
            service_type = "SPECIALIZED"
        else:
            local = rng.random() < 0.55
            organization = resident.region.office_code if local else self._ministry()
            series, service_type = GENERAL_SERIES[int(rng.random() * len(GENERAL_SERIES))], "GENERAL"
        servant = CivilServant(
            id=self.world.next_id("C"),
            resident=resident,
            track=track,
            service_type=service_type,
            job_series=series,
            organization=organization,
            grade=track.grade,
            ceiling=rng.choices(track.ceilings, weights=track.ceiling_weights)[0],
            appointed=appointed,
            leaves=leaves.toordinal(),
        )
        servant.promotion = self._next_promotion(servant, appointed)
        return servant

    def _next_promotion(self, servant: CivilServant, since: int) -> int:
        """Promotions take effect on 1 January or 1 July, some years after the last one."""
        if servant.grade <= servant.ceiling:
            return 0
        years = YEARS_IN_GRADE[servant.grade] * (0.8 + self.world.rng.random() * 0.5)
        due = date.fromordinal(since + int(years * YEAR_DAYS))
        effective = date(due.year, 7, 1) if due.month < 7 else date(due.year + 1, 1, 1)
        return effective.toordinal()

    def _appoint(self, servant: CivilServant) -> None:
        if self.world.alive(servant.resident):
            self._appointed(servant)
            self._plan(servant)

    def _backfill(self, servant: CivilServant) -> None:
        world = self.world
        if not world.alive(servant.resident):
            return
        self._appointed(servant)
        while servant.promotion and servant.promotion < min(world.day, servant.leaves):
            self._promoted(servant, servant.promotion, "REVIEW")
        self._plan(servant)

    def _appointed(self, servant: CivilServant) -> None:
        servant.active = True
        appointed = date.fromordinal(servant.appointed)
        contract = servant.track.appointment_type == "CONTRACT"
        probation = None if contract else appointed + timedelta(days=364 if servant.grade <= 5 else 181)
        self.world.emit(
            APPOINTED,
            {
                "civil_servant_id": servant.id,
                "resident_id": servant.resident.id,
                "name": servant.resident.name,
                "organization_code": servant.organization,
                "service_type": servant.service_type,
                "grade": servant.grade,
                "job_series": servant.job_series,
                "appointment_type": servant.track.appointment_type,
                "appointed_on": appointed,
                "probation_ends_on": probation,
            },
        )

    def _promoted(self, servant: CivilServant, day: int, promotion_type: str) -> None:
        previous, servant.grade = servant.grade, servant.grade - 1
        servant.promotion = self._next_promotion(servant, day)
        self.world.emit(
            PROMOTED,
            {
                "civil_servant_id": servant.id,
                "resident_id": servant.resident.id,
                "organization_code": servant.organization,
                "previous_grade": previous,
                "new_grade": servant.grade,
                "job_series": servant.job_series,
                "promotion_type": promotion_type,
                "promoted_on": date.fromordinal(day),
            },
        )

    def _plan(self, servant: CivilServant) -> None:
        """Book the servant's next career step: whichever of the possible ones comes first."""
        world, rng = self.world, self.world.rng
        today = world.day
        steps = [
            (servant.leaves, "AGE_LIMIT" if servant.track.appointment_type != "CONTRACT" else "TERM_EXPIRED"),
            (today + 1 + int(rng.expovariate(1 / ROTATION_YEARS) * YEAR_DAYS), "TRANSFER"),
            (today + 1 + int(rng.expovariate(1 / RESIGNATION_YEARS) * YEAR_DAYS), "VOLUNTARY_RESIGNATION"),
            (today + 1 + int(rng.expovariate(1 / DISMISSAL_YEARS) * YEAR_DAYS), "DISMISSAL"),
        ]
        if servant.promotion:
            steps.append((servant.promotion, "PROMOTION"))
        fifty = anniversary(servant.resident.born, 50).toordinal()
        steps.append(
            (
                max(today, fifty) + 1 + int(rng.expovariate(1 / HONORARY_YEARS) * YEAR_DAYS),
                "HONORARY_RETIREMENT",
            )
        )
        day, step = min(steps)
        if day < servant.resident.dies:
            world.on(day, self._step, (servant, step, day))

    def _step(self, subject: tuple[CivilServant, str, int]) -> None:
        servant, step, day = subject
        world, rng = self.world, self.world.rng
        if not servant.active or not world.alive(servant.resident):
            return
        if step == "PROMOTION":
            kind = "REVIEW" if rng.random() < 0.85 else "EXAMINATION" if rng.random() < 0.7 else "SPECIAL"
            self._promoted(servant, day, kind)
        elif step == "TRANSFER":
            self._transferred(servant)
        else:
            self._retire(servant, step, date.fromordinal(min(day, world.day)))
            return
        self._plan(servant)

    def _transferred(self, servant: CivilServant) -> None:
        world, rng = self.world, self.world.rng
        draw = rng.random()
        kind = "REASSIGNMENT" if draw < 0.75 else "INTER_AGENCY_TRANSFER" if draw < 0.9 else "SECONDMENT"
        previous = servant.organization
        if kind != "REASSIGNMENT":
            while servant.organization == previous:
                servant.organization = self._ministry()
        world.emit(
            TRANSFERRED,
            {
                "civil_servant_id": servant.id,
                "resident_id": servant.resident.id,
                "from_organization_code": previous,
                "to_organization_code": servant.organization,
                "grade": servant.grade,
                "job_series": servant.job_series,
                "transfer_type": kind,
                "transferred_on": world.today,
            },
        )

    def _retire(self, servant: CivilServant, reason: str, retired_on: date) -> None:
        servant.active = False
        self.world.emit(
            RETIRED,
            {
                "civil_servant_id": servant.id,
                "resident_id": servant.resident.id,
                "organization_code": servant.organization,
                "grade": servant.grade,
                "reason": reason,
                "service_years": age_on(date.fromordinal(servant.appointed), retired_on),
                "retired_on": retired_on,
            },
        )

    def _ministry(self) -> str:
        return MINISTRY_CODES[int(self.world.rng.random() * len(MINISTRY_CODES))]
