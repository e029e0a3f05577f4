"""Partitions that change hands: a consumer of the group killed, and positions moved under a runner.

Two ``govbus consume residents`` processes on one store share the register's partitions; one is
SIGKILLed while events flow and the other takes its partitions over from the stored positions. A
runner whose stored positions move under it (a rebuild swapped in while it ran) seeks to them and
applies what it had read once more, not as copies.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from bus.settings import Settings
from consumers.adapters import build_read_model
from consumers.stores import Store, open_store
from govbus.bootstrap import build_runner
from govbus.topics import create_bus_topics
from producers.simulators.simulation import simulated_events, typed_events
from schemas.registry_client import RegistryClient
from tests.integration.test_runtime_kill import (
    Publishing,
    assert_same_read_models,
    consume_env,
    kill,
    publish_world,
    recorded,
    start_consume,
)
from tests.support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
EVENTS = 3000
RATE = 150.0
"""Register events a second: the stream lasts 20 s, past the kill and the hand-over."""
RESIDENT_TYPES = frozenset(
    f"govbus.localgov.{name}" for name in ("ResidentRegistered", "ResidentMoved", "ResidentDeceased")
)


def assigned(log: Path) -> list[list[str]]:
    """The partitions of each assignment the residents adapter logged in ``log``, in order."""
    found = []
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "projection.assigned" and record.get("adapter") == "residents":
                found.append(record["partitions"])
    return found


def applied_ids(path: Path, adapter: str) -> tuple[int, int]:
    """(rows, distinct event ids) the store at ``path`` tracks as applied by ``adapter``."""
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
        found = db.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM govbus_applied_events WHERE adapter = ?",
            (adapter,),
        ).fetchone()
    return int(found[0]), int(found[1])


def test_killing_one_of_two_consumers_hands_its_partitions_over_without_loss_or_copies(
    bus_settings: Settings,
    gateway_url: str,
    registry: RegistryClient,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """The survivor of two residents consumers takes the killed one's partitions; a clean run agrees."""
    create_bus_topics(bus_settings)
    registry_url = f"{gateway_url}/registry"
    shared, clean_path = tmp_path / "shared.sqlite", tmp_path / "clean.sqlite"
    env = consume_env(bus_settings, registry_url, f"sqlite:///{shared}")
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = start_consume(processes, env, logs[0], "residents")
    wait_for(lambda: assigned(logs[0]), timeout_s=60, what="the first consumer's assignment")
    second = start_consume(processes, env, logs[1], "residents")
    world = typed_events(RESIDENT_TYPES, EVENTS, 29)
    publishing = Publishing(lambda: publish_world(bus_settings, registry, world, RATE))
    # Both hold partitions once the second has joined: the first was assigned a second time.
    wait_for(
        lambda: len(assigned(logs[0])) >= 2 and assigned(logs[1]) and assigned(logs[1])[-1],
        timeout_s=60,
        what="the two consumers to share the partitions",
    )
    held = assigned(logs[0])[-1]
    assert held
    assert len(held) + len(assigned(logs[1])[-1]) == 3
    floor = recorded(shared) + 200
    wait_for(lambda: recorded(shared) >= floor, timeout_s=60, what="both to apply events")
    kill(first)
    at_kill = recorded(shared)
    wait_for(
        lambda: len(assigned(logs[1])[-1]) == 3, timeout_s=60, what="the survivor to take every partition"
    )
    publishing.join()
    topic = bus_settings.topic_prefix + "localgov.resident"
    wait_for(lambda: recorded(shared) == EVENTS, timeout_s=60, what="the survivor to apply the rest")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0, logs[1].read_text(encoding="utf-8")[-3000:]
    assert at_kill < EVENTS, "the stream ended before the kill"

    rebuild = start_consume(
        processes,
        consume_env(bus_settings, registry_url, f"sqlite:///{clean_path}"),
        tmp_path / "clean.log",
        "residents",
        "--until-caught-up",
    )
    assert rebuild.wait(timeout=60) == 0
    store, clean = open_store(f"sqlite:///{shared}"), open_store(f"sqlite:///{clean_path}")
    try:
        positions = store.positions("residents")
        assert sorted(positions) == [(topic, partition) for partition in range(3)]
        assert_same_read_models(store, clean, ["residents"])
    finally:
        store.close()
        clean.close()
    # Every event of the register applied once, by one consumer or the other.
    assert applied_ids(shared, "residents") == (EVENTS, EVENTS) == applied_ids(clean_path, "residents")


def test_a_rebuild_swapped_in_behind_the_runner_is_caught_up_again_without_dropping_events(
    bus_settings: Settings, registry: RegistryClient, tmp_path: Path
) -> None:
    """A live runner ahead of a rebuild swapped in re-applies every event after the rebuild's positions."""
    create_bus_topics(bus_settings)
    store = open_store(bus_settings.effective_readmodel_url)
    clean = open_store(f"sqlite:///{tmp_path / 'clean.sqlite'}")
    model = build_read_model("residents")
    events = list(simulated_events("localgov", 900, 5))
    live = build_runner(bus_settings, "residents", store=store, registry=registry)
    stop = threading.Event()
    thread = threading.Thread(target=live.run, args=(stop,), daemon=True)
    try:
        publish_world(bus_settings, registry, events[:300])
        store.shadow(model.tables, "residents")
        rebuild = build_runner(bus_settings, "residents", store=store, registry=registry, shadow=True)
        rebuild.run(threading.Event(), until_caught_up=True)
        publish_world(bus_settings, registry, events[300:600])
        thread.start()
        in_topic = sum(1 for e in events[:600] if e.type in RESIDENT_TYPES)
        wait_for(lambda: recorded_by(store, "residents") == in_topic, what="the runner to pass the rebuild")
        store.swap(model.tables, "residents")  # the rebuild's positions are 300 events behind the runner's
        publish_world(bus_settings, registry, events[600:])
        everything = sum(1 for e in events if e.type in RESIDENT_TYPES)
        wait_for(lambda: recorded_by(store, "residents") == everything, what="the runner to read everything")
        build_runner(bus_settings, "residents", store=clean, registry=registry).run(
            threading.Event(), until_caught_up=True
        )
        assert_same_read_models(store, clean, ["residents"])
        assert live.stats.duplicates == 0
    finally:
        stop.set()
        thread.join(30)
        store.close()
        clean.close()


def recorded_by(store: Store, adapter: str) -> int:
    """Records ``adapter`` has recorded positions for in ``store``."""
    return sum(offset + 1 for offset in store.positions(adapter).values())
