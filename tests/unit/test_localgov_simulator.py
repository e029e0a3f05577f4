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
