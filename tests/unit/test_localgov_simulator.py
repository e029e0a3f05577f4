"""The local-government simulator."""

from __future__ import annotations

from producers.simulators.localgov import LocalGovSimulator
from schemas.catalog import load_catalog
from schemas.codec import encode


def test_same_seed_gives_identical_events() -> None:
    """Two runs with one seed produce the same events, ids and times."""
    first = list(LocalGovSimulator(seed=3).events(200))
    second = list(LocalGovSimulator(seed=3).events(200))
    assert first == second
    assert first != list(LocalGovSimulator(seed=4).events(200))


def test_residents_are_registered_before_anything_else_happens_to_them() -> None:
    """No move or death precedes the resident's registration, and nobody acts after death."""
    registered: set[str] = set()
    dead: set[str] = set()
    for event in LocalGovSimulator(seed=1).events(500):
        resident = event.data["resident_id"]
        assert resident not in dead
        if event.type.endswith("ResidentRegistered"):
            registered.add(resident)
        else:
            assert resident in registered
        if event.type.endswith("ResidentDeceased"):
            dead.add(resident)


def test_every_simulated_event_fits_its_catalog_schema() -> None:
    """Every generated payload encodes with the catalog schema of its type."""
    catalog = load_catalog()
    for event in LocalGovSimulator(seed=2).events(300):
        encode(1, catalog.get(event.type).parsed, event.data)


def test_only_resident_register_events_come_out() -> None:
    """The simulator yields the events of localgov.resident only, starting with a registration."""
    catalog = load_catalog()
    events = list(LocalGovSimulator(seed=5, residents=30).events(400))
    assert len(events) == 400
    assert {catalog.get(e.type).topic for e in events} == {"localgov.resident"}
    assert events[0].type.endswith("ResidentRegistered")
    assert {e.type.rsplit(".", 1)[-1] for e in events} == {
        "ResidentRegistered",
        "ResidentMoved",
        "ResidentDeceased",
    }


def test_moves_carry_the_new_address_and_some_residents_move_repeatedly() -> None:
    """Each move names a new address; with the default population someone moves more than once."""
    moves: dict[str, int] = {}
    for event in LocalGovSimulator(seed=7).events(300):
        if event.type.endswith("ResidentMoved"):
            assert event.data["new_address"]["road_address"]
            moves[event.data["resident_id"]] = moves.get(event.data["resident_id"], 0) + 1
    assert max(moves.values()) >= 2
