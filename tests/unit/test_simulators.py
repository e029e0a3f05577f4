"""The four-agency simulated world: determinism, cross-agency consistency and catalog fit."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from time import monotonic
from typing import Any

import pytest
from fastavro import schemaless_writer

from bus.errors import ConfigurationError
from govbus.cli.simulate import publish_events
from producers.simulators.education import OFFICES
from producers.simulators.reference import REGIONS, age_on
from producers.simulators.simulation import (
    AGENCIES,
    EVENT_TYPES,
    RUN_YEARS,
    agency_types,
    default_residents,
    simulated_events,
)
from producers.simulators.world import SimulatedEvent
from schemas.catalog import load_catalog

RESIDENT_FIELDS = (
    "resident_id",
    "recipient_resident_id",
    "owner_resident_id",
    "new_owner_resident_id",
    "previous_owner_resident_id",
    "relative_resident_id",
)
LONG_RUN = 20_000


@cache
def long_run() -> tuple[SimulatedEvent, ...]:
    """Every agency's events of one long run, shared by the invariant tests (generated once)."""
    return tuple(simulated_events("all", LONG_RUN, seed=5))


def named(event: SimulatedEvent) -> str:
    """The record name of an event, e.g. ``ResidentMoved``."""
    return event.type.rsplit(".", 1)[-1]


def is_consequence_of_death(event: SimulatedEvent, resident_id: str) -> bool:
    """Whether ``event`` is what a death report sets in motion inside the simulated world: an inheritance."""
    data = event.data
    return (
        named(event) == "VehicleOwnershipTransferred"
        and data["cause"] == "INHERITANCE"
        and data["previous_owner_resident_id"] == resident_id
    )


def test_same_seed_gives_identical_events_and_another_seed_does_not() -> None:
    """Two runs with one seed, agency and count yield the same events, ids and times; another seed differs."""
    first = list(simulated_events("all", 3000, seed=9))
    assert first == list(simulated_events("all", 3000, seed=9))
    assert [e.id for e in first] != [e.id for e in simulated_events("all", 3000, seed=10)]
    assert len({e.id for e in first}) == len(first)


def test_an_agency_run_is_that_agencys_slice_of_the_same_world() -> None:
    """With the same population, the education events of an education run are those of the all-agency run."""
    education = list(simulated_events("education", 200, seed=4, residents=1500))
    everything = simulated_events("all", 200_000, seed=4, residents=1500)
    assert education == [e for e in everything if e.agency == "education"][:200]


def test_education_run_yields_only_education_events() -> None:
    """``--agency education`` yields the requested count, all of them education events."""
    events = list(simulated_events("education", 500, seed=3))
    assert len(events) == 500
    assert {e.agency for e in events} == {"education"}
    assert {named(e) for e in events} >= {"SchoolRegistered", "StudentEnrolled"}


def test_every_event_fits_its_catalog_schema() -> None:
    """Every payload of a long all-agency run encodes with its catalog schema and belongs to its agency."""
    catalog = load_catalog()
    for event in long_run():
        kind = catalog.get(event.type)
        assert event.agency == kind.agency
        assert isinstance(event.time, datetime)
        assert event.time.tzinfo is not None
        schemaless_writer(io.BytesIO(), kind.parsed, event.data)


def test_every_catalog_event_type_is_simulated() -> None:
    """The simulators produce every event type of the catalog, and nothing outside it."""
    catalog_types = {kind.full_name for kind in load_catalog()}
    assert set(EVENT_TYPES) == catalog_types
    assert {e.type for e in long_run()} == catalog_types


def test_events_come_in_clock_order() -> None:
    """Event times never go backwards."""
    times = [e.time for e in long_run()]
    assert times == sorted(times)


def test_residents_are_registered_before_any_event_refers_to_them() -> None:
    """No event of any agency names a resident who has not been registered yet."""
    registered: set[str] = set()
    for event in long_run():
        if named(event) == "ResidentRegistered":
            registered.add(event.data["resident_id"])
        for name in RESIDENT_FIELDS:
            if name in event.data:
                assert event.data[name] in registered, (named(event), event.data[name])


def test_nothing_happens_to_a_resident_after_their_death_but_an_inheritance() -> None:
    """After a death report the deceased appears only as the previous owner of an inherited vehicle."""
    dead: set[str] = set()
    for event in long_run():
        for name in RESIDENT_FIELDS:
            resident = event.data.get(name)
            if resident in dead:
                assert is_consequence_of_death(event, resident), (named(event), event.data)
        if named(event) == "ResidentDeceased":
            dead.add(event.data["resident_id"])
    assert len(dead) >= 10


def test_death_stops_payments_and_leaves_suspension_and_retirement_to_the_reactions() -> None:
    """No payment is made on or after a death, and no suspension or retirement is simulated for a death."""
    events = long_run()
    died_on = {e.data["resident_id"]: e.data["died_on"] for e in events if named(e) == "ResidentDeceased"}
    granted: dict[str, dict[str, Any]] = {}
    suspended: set[str] = set()
    running_at_death = 0
    for event in events:
        data = event.data
        kind = named(event)
        if kind == "BenefitSuspended":
            assert data["reason"] != "RECIPIENT_DECEASED"
            assert data["cause_event_id"] is None
            suspended.add(data["benefit_id"])
        elif kind == "CivilServantRetired":
            assert data["reason"] != "DEATH_IN_SERVICE"
        elif kind == "BenefitGranted":
            granted[data["benefit_id"]] = data
        elif kind == "BenefitPaid":
            death = died_on.get(data["recipient_resident_id"])
            assert death is None or data["paid_at"].date() < death
        elif kind == "ResidentDeceased":
            running_at_death += sum(
                1
                for benefit_id, grant in granted.items()
                if grant["recipient_resident_id"] == data["resident_id"]
                and benefit_id not in suspended
                and (grant["effective_until"] is None or grant["effective_until"] >= data["died_on"])
            )
    # Benefits still running at a death are what finance-reactions suspends; the run must have some.
    assert running_at_death >= 5


def test_benefits_are_paid_only_while_granted_and_in_plausible_amounts() -> None:
    """Payments follow their grant, stay within its dates, stop at suspension and match the granted amount."""
    grants: dict[str, dict[str, Any]] = {}
    stopped: set[str] = set()
    for event in long_run():
        data = event.data
        if named(event) == "BenefitGranted":
            grants[data["benefit_id"]] = data
            if data["program"] == "BASIC_PENSION":
                assert Decimal(330_000) <= data["monthly_amount"] <= Decimal(400_000)
            if data["program"] == "CHILD_ALLOWANCE":
                assert data["monthly_amount"] == Decimal(100_000)
        elif named(event) == "BenefitPaid":
            grant = grants[data["benefit_id"]]
            assert data["benefit_id"] not in stopped
            assert data["amount"] == grant["monthly_amount"]
            assert data["period_end"] >= grant["effective_from"]
            assert grant["effective_until"] is None or data["period_start"] <= grant["effective_until"]
        elif named(event) == "BenefitSuspended":
            stopped.add(data["benefit_id"])


def test_students_are_registered_residents_of_school_age_at_registered_schools() -> None:
    """Enrolments name a registered school of the right level and a resident aged for it (6, 12 or 15)."""
    births: dict[str, date] = {}
    school_levels: dict[str, str] = {}
    entrance_ages = {"ELEMENTARY": (6, 7), "MIDDLE": (12, 13), "HIGH": (15, 16)}
    enrolments = 0
    for event in long_run():
        data = event.data
        if named(event) == "ResidentRegistered":
            births[data["resident_id"]] = data["birth_date"]
        elif named(event) == "SchoolRegistered":
            school_levels[data["school_id"]] = data["level"]
        elif named(event) == "StudentEnrolled":
            level = school_levels[data["school_id"]]
            age = age_on(births[data["resident_id"]], data["enrolled_on"])
            if data["admission_type"] == "ENTRANCE":
                assert data["grade"] == 1
                assert age in entrance_ages[level], (level, age)
            else:
                assert entrance_ages[level][0] <= age <= entrance_ages[level][1] + 6
            enrolments += 1
        elif named(event) == "StudentTransferred":
            assert school_levels[data["to_school_id"]] == school_levels[data["from_school_id"]]
        elif named(event) == "StudentGraduated":
            assert data["school_id"] in school_levels
    assert enrolments >= 100


def test_civil_servants_are_adults_whose_careers_add_up() -> None:
    """Appointments happen between 20 and 40, promotions go one grade up, and retirement ends a career."""
    births: dict[str, date] = {}
    grades: dict[str, int] = {}
    retired: set[str] = set()
    for event in long_run():
        data = event.data
        kind = named(event)
        if kind == "ResidentRegistered":
            births[data["resident_id"]] = data["birth_date"]
            continue
        servant = data.get("civil_servant_id")
        if servant is None:
            continue
        assert servant not in retired
        if kind == "CivilServantAppointed":
            assert 20 <= age_on(births[data["resident_id"]], data["appointed_on"]) <= 40
            grades[servant] = data["grade"]
        elif kind == "CivilServantPromoted":
            assert data["previous_grade"] == grades[servant] == data["new_grade"] + 1
            grades[servant] = data["new_grade"]
        elif kind == "CivilServantTransferred":
            assert data["grade"] == grades[servant]
        elif kind == "CivilServantRetired":
            retired.add(servant)
            if data["reason"] == "AGE_LIMIT":
                assert age_on(births[data["resident_id"]], data["retired_on"]) == 60
    assert len(grades) >= 50


def test_budget_lines_are_allocated_before_spending_and_never_overspent() -> None:
    """Expenditures follow their line's allocation and their sum never exceeds what was allocated."""
    allocated: Counter[str] = Counter()
    spent: Counter[str] = Counter()
    for event in long_run():
        data = event.data
        if named(event) == "BudgetAllocated":
            allocated[data["budget_line_id"]] += int(data["amount"])
            assert data["amount"] >= 1_000_000
        elif named(event) == "ExpenditureExecuted":
            line = data["budget_line_id"]
            assert line in allocated
            spent[line] += int(data["amount"])
            assert spent[line] <= allocated[line]
    assert sum(spent.values()) > 10**12


def test_moves_and_deaths_agree_with_the_register_dates() -> None:
    """Moves take effect after registration and are reported within 14 days; deaths within a month."""
    settled: dict[str, date] = {}
    for event in long_run():
        data = event.data
        if named(event) == "ResidentRegistered":
            settled[data["resident_id"]] = data["registered_on"]
        elif named(event) == "ResidentMoved":
            assert settled[data["resident_id"]] <= data["moved_on"] <= data["reported_on"]
            assert (data["reported_on"] - data["moved_on"]).days <= 14
            assert data["reported_on"] == event.time.date()
            settled[data["resident_id"]] = data["moved_on"]
        elif named(event) == "ResidentDeceased":
            assert 0 <= (data["reported_on"] - data["died_on"]).days <= 33


def test_registration_numbers_plates_and_ids_look_korean() -> None:
    """Registration numbers match birth date and sex with a valid check digit; plates read like '12가3456'."""
    for event in long_run():
        data = event.data
        if named(event) == "ResidentRegistered":
            number = data["registration_number"]
            assert number[:6] == data["birth_date"].strftime("%y%m%d")
            female = data["sex"] == "FEMALE"
            assert int(number[7]) == (3 if data["birth_date"].year >= 2000 else 1) + female
            digits = [int(d) for d in number.replace("-", "")]
            weights = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
            assert digits[12] == (11 - sum(d * w for d, w in zip(digits, weights, strict=False)) % 11) % 10
            assert len(data["resident_id"]) == 13
            assert data["resident_id"][1:].isdigit()
            assert 2 <= len(data["name"]) <= 4
        elif named(event) == "VehicleRegistered":
            plate = data["plate_number"]
            assert plate[-4:].isdigit()
            assert plate[:-5].isdigit()
            assert len(plate[:-5]) in (2, 3)
            assert len(data["vin"]) == 17
            assert not set("IOQ") & set(data["vin"])


def test_every_region_has_an_office_of_education() -> None:
    """Schools can be registered in every region the residents live in."""
    assert {region.sido for region in REGIONS} <= set(OFFICES)


@pytest.mark.parametrize("agency", [*AGENCIES, "all"])
def test_default_population_spans_a_few_simulated_years(agency: str) -> None:
    """Sized by default, a run of any agency covers roughly RUN_YEARS of simulated time."""
    count = 2000
    events = list(simulated_events(agency, count, seed=8))
    assert len(events) == count
    span = (events[-1].time - events[0].time).days / 365.2425
    assert RUN_YEARS / 3 <= span <= RUN_YEARS * 2, span
    assert default_residents(count, agency_types(agency)) >= 20


def test_an_unknown_agency_is_refused() -> None:
    """Asking for an agency the bus does not know raises ValueError naming the known ones."""
    with pytest.raises(ValueError, match="localgov"):
        agency_types("weather")


def test_event_times_are_office_hours_in_korea() -> None:
    """Events happen on weekdays between 09:00 and 19:00 Korea Standard Time."""
    hours: Counter[int] = Counter()
    for event in long_run():
        assert event.time.utcoffset() == timedelta(hours=9)
        assert event.time.weekday() < 5
        hours[event.time.hour] += 1
    assert min(hours) >= 9
    assert max(hours) <= 19


class RecordingSink:
    """A publisher stand-in that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], str | None, dict[str, str] | None]] = []
        self.closed = False

    def publish(
        self,
        event_type: str,
        payload: Mapping[str, Any],
        *,
        event_id: str | None = None,
        time: datetime | None = None,
        extensions: Mapping[str, str] | None = None,
    ) -> str:
        """Record the event."""
        self.events.append(
            (event_type, dict(payload), event_id, None if extensions is None else dict(extensions))
        )
        return event_id or ""

    def close(self) -> None:
        """Remember being closed."""
        self.closed = True


def test_publishing_routes_each_event_to_its_agencys_publisher(capsys: pytest.CaptureFixture[str]) -> None:
    """Every event goes to its agency's publisher with its id and legal basis; the summary counts topics."""
    sinks = {agency: RecordingSink() for agency in AGENCIES}
    topics = {kind.full_name: kind.topic for kind in load_catalog()}
    tally = publish_events(simulated_events("all", 1500, seed=2), sinks, topics, 1500)
    assert sum(tally.values()) == 1500
    for agency, sink in sinks.items():
        assert sink.closed
        assert sink.events
        assert {t.split(".")[1] for t, *_ in sink.events} == {agency}
        assert all(event_id for *_, event_id, _ in sink.events)
    for event_type, payload, _, extensions in sinks["finance"].events:
        if "legal_basis" in payload:
            assert extensions is not None, event_type
            assert extensions["legalbasis"] == payload["legal_basis"]
    printed = capsys.readouterr().out
    assert "events/s" in printed
    assert f"finance.benefit: {tally['finance.benefit']} events" in printed


def test_publishing_an_event_without_its_agencys_publisher_is_refused() -> None:
    """An event of an agency that has no publisher raises ConfigurationError naming the agency."""
    topics = {kind.full_name: kind.topic for kind in load_catalog()}
    with pytest.raises(ConfigurationError, match="no publisher for agency"):
        publish_events(simulated_events("all", 2000, seed=2), {"localgov": RecordingSink()}, topics, 2000)


def test_a_rate_paces_publishing() -> None:
    """With --rate, publishing N events takes at least (N - 1) / rate seconds."""
    topics = {kind.full_name: kind.topic for kind in load_catalog()}
    started = monotonic()
    publish_events(
        simulated_events("education", 21, seed=2), {"education": RecordingSink()}, topics, 21, 200.0
    )
    assert monotonic() - started >= 0.1
