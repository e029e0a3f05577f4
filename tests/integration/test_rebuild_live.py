"""A rebuild while the live adapter runs and events keep flowing: the live runner ends up exactly right.

The rebuild fills the shadow tables from the beginning and swaps them in; the live runner, which
kept applying to the live tables meanwhile, finds its stored positions moved and seeks to them. Once
every event is applied, its rows (provenance included) equal those of a clean replay into another store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bus.settings import Settings
from consumers.decoder import EventDecoder
from consumers.lag import measure_lag
from consumers.projections.localgov import RESIDENTS, ResidentsModel
from consumers.rebuild import rebuild
from consumers.runtime import ReadModelRunner, RunStats
from consumers.stores import Store, open_store
from govbus.bootstrap import build_connection, build_publisher, build_runner
from govbus.topics import create_bus_topics
from producers.simulators.localgov import LocalGovSimulator
from producers.simulators.world import SimulatedEvent
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient
from tests.support import wait_for

pytestmark = pytest.mark.integration
EVENTS = list(LocalGovSimulator(seed=21, residents=40).events(1200))


def _publish(settings: Settings, registry: RegistryClient, events: list[SimulatedEvent]) -> None:
    publisher = build_publisher(settings, "localgov", registry=registry)
    for event in events:
        publisher.publish(event.type, event.data, event_id=event.id, time=event.time)
    publisher.close()


def _caught_up(settings: Settings, store: Store) -> bool:
    lag = measure_lag(
        build_connection(settings, "test-lag"), store, [ResidentsModel()], settings.topic_prefix
    )
    return lag[0].total == 0


@dataclass
class Live:
    """The live runner in a thread; clearing ``gate`` holds it after its next batch, outside a transaction."""

    runner: ReadModelRunner
    gate: threading.Event
    stop: threading.Event
    thread: threading.Thread


@pytest.fixture
def live(bus_settings: Settings, registry: RegistryClient) -> Iterator[Live]:
    """A live residents runner on the test's store, running in a thread, with small batches."""
    create_bus_topics(bus_settings)
    store = open_store(bus_settings.effective_readmodel_url)
    runner = ReadModelRunner(
        build_connection(bus_settings, "test-live"),
        ResidentsModel(),
        store,
        EventDecoder(registry, load_catalog()),
        topic_prefix=bus_settings.topic_prefix,
        batch_size=25,
    )
    gate, stop = threading.Event(), threading.Event()
    gate.set()

    def hold(_: RunStats) -> None:
        while not gate.wait(0.1) and not stop.is_set():
            pass

    thread = threading.Thread(target=runner.run, args=(stop, hold), daemon=True)
    thread.start()
    yield Live(runner, gate, stop, thread)
    stop.set()
    thread.join(timeout=30)
    store.close()


def _assert_equals_a_clean_replay(
    settings: Settings, registry: RegistryClient, live: Live, store: Store, tmp_path: Path
) -> None:
    wait_for(lambda: _caught_up(settings, store), timeout_s=60, what="the live runner caught up")
    live.stop.set()
    live.thread.join(timeout=30)
    assert not live.thread.is_alive()
    clean_store = open_store(f"sqlite:///{tmp_path / 'clean.sqlite'}")
    clean = build_runner(settings, "residents", store=clean_store, registry=registry)
    clean.run(threading.Event(), until_caught_up=True)
    assert _caught_up(settings, clean_store)
    assert list(store.dump(RESIDENTS)) == list(clean_store.dump(RESIDENTS))
    assert store.positions("residents") == clean_store.positions("residents")
    clean_store.close()


def test_a_rebuild_ahead_of_the_live_runner_moves_it_forward(
    bus_settings: Settings, registry: RegistryClient, live: Live, tmp_path: Path
) -> None:
    """A live runner held behind while a rebuild swaps in seeks forward and ends equal to a clean replay."""
    store = open_store(bus_settings.effective_readmodel_url)
    _publish(bus_settings, registry, EVENTS[:400])
    wait_for(lambda: _caught_up(bus_settings, store), what="the live runner caught up")
    live.gate.clear()
    _publish(bus_settings, registry, EVENTS[400:800])
    wait_for(lambda: not _caught_up(bus_settings, store), what="the live runner behind")

    shadow = build_runner(bus_settings, "residents", store=store, registry=registry, shadow=True)
    result = rebuild(store, shadow)
    assert result.applied == 800
    assert result.rows == {"residents": sum(1 for _ in store.dump(RESIDENTS))}
    assert _caught_up(bus_settings, store)  # the swap put the rebuild's positions in place
    skipped = live.runner.stats.skipped
    live.gate.set()
    _publish(bus_settings, registry, EVENTS[800:])
    _assert_equals_a_clean_replay(bus_settings, registry, live, store, tmp_path)
    assert live.runner.stats.skipped > skipped  # it met the moved positions and sought to them
    store.close()


def test_a_rebuild_behind_the_live_runner_moves_it_back(
    bus_settings: Settings, registry: RegistryClient, live: Live, tmp_path: Path
) -> None:
    """A live runner ahead of the rebuild it finds swapped in seeks back and ends equal to a clean replay."""
    store = open_store(bus_settings.effective_readmodel_url)
    _publish(bus_settings, registry, EVENTS[:400])
    wait_for(lambda: _caught_up(bus_settings, store), what="the live runner caught up")
    # The rebuild's steps, with more events applied by the live runner between its catch-up and its swap.
    shadow = build_runner(bus_settings, "residents", store=store, registry=registry, shadow=True)
    store.shadow((RESIDENTS,), "residents")
    shadow.run(threading.Event(), until_caught_up=True)
    _publish(bus_settings, registry, EVENTS[400:800])
    wait_for(lambda: _caught_up(bus_settings, store), what="the live runner caught up again")
    store.swap((RESIDENTS,), "residents")
    assert not _caught_up(bus_settings, store)  # the rebuild's positions are behind the live runner's
    _publish(bus_settings, registry, EVENTS[800:])
    _assert_equals_a_clean_replay(bus_settings, registry, live, store, tmp_path)
    store.close()
