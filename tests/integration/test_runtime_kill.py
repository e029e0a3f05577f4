"""``govbus consume`` SIGKILLed again and again while every agency publishes: the read models stay exact.

The consumer runs as an operator runs it (``python -m govbus consume``, every adapter in one process, a
SQLite store). A publisher thread sends a simulated world of all four agencies at a steady rate while
the test kills the consumer at points placed by its progress (the positions recorded in the store, the
assignments it logs): right after its first batch, as soon as a restarted consumer is assigned
partitions, and after a few hundred and a couple of thousand more records. After the last restart it
runs with ``--until-caught-up``. A second consumer then replays every topic into a fresh SQLite file in
one clean run, and every table of both stores must hold the same rows: nothing lost, nothing applied
twice.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bus.settings import Settings
from consumers.adapters import ADAPTERS, build_read_model
from consumers.readmodel import PROVENANCE
from consumers.stores import Store, open_store
from govbus.bootstrap import build_publisher, build_runner
from govbus.topics import create_bus_topics
from producers.simulators.simulation import AGENCIES, simulated_events
from producers.simulators.world import SimulatedEvent
from schemas.registry_client import RegistryClient
from tests.support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
EVENTS = 12_000
RATE = 800.0
"""Events a second the publisher sends: the stream lasts about 15 s, long enough for every kill."""
ORDER_DEPENDENT = frozenset({"budget_programs", "benefit_recipients"})
"""Tables summing events of several partitions: their provenance names whichever event came last."""


def consume_env(settings: Settings, registry_url: str, readmodel_url: str) -> dict[str, str]:
    """The environment of a ``govbus consume`` process on this test's topics and store."""
    return {
        **os.environ,
        "GOVBUS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "GOVBUS_REGISTRY_URL": registry_url,
        "GOVBUS_HOME": str(settings.home),
        "GOVBUS_READMODEL_URL": readmodel_url,
        "GOVBUS_TOPIC_PREFIX": settings.topic_prefix,
        "GOVBUS_LOG_FORMAT": "json",
    }


def start_consume(
    processes: list[subprocess.Popen[bytes]], env: dict[str, str], log: Path, *args: str
) -> subprocess.Popen[bytes]:
    """``python -m govbus consume ARGS`` as its own process (added to ``processes``), output to ``log``."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "govbus", "consume", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    processes.append(process)
    return process


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no handler runs, no transaction or consumer is closed."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def recorded(path: Path) -> int:
    """Records the store at ``path`` has recorded positions for, all adapters together."""
    try:
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10) as db:
            found = db.execute('SELECT coalesce(sum("offset" + 1), 0) FROM govbus_positions').fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(found[0])


def applied_past(path: Path, floor: int) -> Callable[[], bool]:
    """A condition: the store at ``path`` has recorded positions for at least ``floor`` records."""
    return lambda: recorded(path) >= floor


def publish_world(
    settings: Settings, registry: RegistryClient, events: Iterable[SimulatedEvent], rate: float = 0
) -> None:
    """Publish simulated events of any agency, each through its agency's publisher, ``rate`` a second."""
    publishers = {agency: build_publisher(settings, agency, registry=registry) for agency in AGENCIES}
    started = time.monotonic()
    try:
        for sent, event in enumerate(events):
            if rate > 0 and sent % 100 == 0:
                time.sleep(max(0.0, started + sent / rate - time.monotonic()))
                for publisher in publishers.values():
                    publisher.flush()
            publishers[event.agency].publish(event.type, event.data, event_id=event.id, time=event.time)
    finally:
        for publisher in publishers.values():
            publisher.close()


class Publishing:
    """A publisher thread; :meth:`join` re-raises what it raised."""

    def __init__(self, target: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self._target = target
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._target()
        except BaseException as exc:
            self.error = exc

    @property
    def done(self) -> bool:
        """Whether the thread has finished."""
        return not self._thread.is_alive()

    def join(self, timeout_s: float = 120) -> None:
        """Wait for the thread; raise its error."""
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the publisher did not finish"
        if self.error is not None:
            raise self.error


def figures(rows: Iterable[dict[str, Any]], drop: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Rows without the columns in ``drop``."""
    dropped = set(drop)
    return [{k: v for k, v in row.items() if k not in dropped} for row in rows]


def assert_same_read_models(store: Store, clean: Store, adapters: Iterable[str]) -> dict[str, int]:
    """Every table of ``adapters`` holds the same rows in both stores; returns rows per table."""
    provenance = [name for name, _ in PROVENANCE]
    sizes: dict[str, int] = {}
    for adapter in adapters:
        for table in build_read_model(adapter).tables:
            drop = provenance if table.name in ORDER_DEPENDENT else []
            got, want = figures(store.dump(table), drop), figures(clean.dump(table), drop)
            assert len(got) == len(want), f"{table.name}: {len(got)} rows, a clean rebuild has {len(want)}"
            for mine, theirs in zip(got, want, strict=True):
                assert mine == theirs, f"{table.name} differs from a clean rebuild"
            sizes[table.name] = len(got)
    return sizes


def total_paid(store: Store) -> Decimal:
    """The sum of every benefit's total paid: a figure a copy applied twice would change."""
    return sum((row["total_paid"] for row in store.dump(build_read_model("benefits").tables[0])), Decimal(0))


def test_a_consumer_killed_repeatedly_ends_with_the_read_models_of_a_clean_rebuild(
    bus_settings: Settings,
    gateway_url: str,
    registry: RegistryClient,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """After four SIGKILLs while events flow, every read model equals a clean replay into a fresh store."""
    create_bus_topics(bus_settings)
    registry_url = f"{gateway_url}/registry"
    killed_path, clean_path = tmp_path / "killed.sqlite", tmp_path / "clean.sqlite"
    env = consume_env(bus_settings, registry_url, f"sqlite:///{killed_path}")
    log = tmp_path / "consume.log"
    publishing = Publishing(
        lambda: publish_world(bus_settings, registry, simulated_events("all", EVENTS, 17), RATE)
    )

    kills: list[int] = []
    # 1: right after the first batch; 2: as soon as the restarted consumer is assigned partitions;
    # 3 and 4: once the restarted consumer has applied a few hundred and then a couple thousand more.
    process = start_consume(processes, env, log)
    wait_for(lambda: recorded(killed_path) > 0, timeout_s=60, what="the first batch")
    kill(process)
    kills.append(recorded(killed_path))
    assignments = log.read_text(encoding="utf-8").count('"projection.assigned"')
    process = start_consume(processes, env, log)
    wait_for(
        lambda: log.read_text(encoding="utf-8").count('"projection.assigned"') > assignments,
        timeout_s=60,
        what="an adapter of the restarted consumer to be assigned its partitions",
    )
    kill(process)
    kills.append(recorded(killed_path))
    for more in (300, 2000):
        process = start_consume(processes, env, log)
        wait_for(applied_past(killed_path, kills[-1] + more), timeout_s=60, what=f"{more} more records")
        kill(process)
        kills.append(recorded(killed_path))
    publishing.join()
    assert kills[-1] < EVENTS, f"the stream ended before the last kill: {kills}"

    drain = start_consume(processes, env, log, "--until-caught-up")
    assert drain.wait(timeout=90) == 0, log.read_text(encoding="utf-8")[-3000:]
    clean_env = consume_env(bus_settings, registry_url, f"sqlite:///{clean_path}")
    rebuild = start_consume(processes, clean_env, log, "--until-caught-up")
    assert rebuild.wait(timeout=90) == 0, log.read_text(encoding="utf-8")[-3000:]

    # Several adapters read one topic (residents and households both read the register).
    assert recorded(killed_path) == recorded(clean_path) >= EVENTS
    store, clean = open_store(f"sqlite:///{killed_path}"), open_store(f"sqlite:///{clean_path}")
    try:
        sizes = assert_same_read_models(store, clean, ADAPTERS)
        assert total_paid(store) == total_paid(clean) > 0
    finally:
        store.close()
        clean.close()
    assert all(sizes[name] > 0 for name in ("residents", "benefits", "budget_programs", "students"))
    print(f"\nrecorded at each kill: {kills}; rows per table: {sizes}")


def test_a_restart_with_nothing_left_to_read_is_caught_up(
    bus_settings: Settings, registry: RegistryClient
) -> None:
    """A consumer restarted at the end of every partition stops with ``until_caught_up`` at once."""
    create_bus_topics(bus_settings)
    publish_world(bus_settings, registry, simulated_events("all", 300, 3))
    store = open_store(bus_settings.effective_readmodel_url)
    try:
        first = build_runner(bus_settings, "residents", store=store, registry=registry)
        first.run(threading.Event(), until_caught_up=True)
        assert first.stats.applied > 0
        again = build_runner(bus_settings, "residents", store=store, registry=registry)
        stop, finished = threading.Event(), threading.Event()

        def run_until_caught_up() -> None:
            again.run(stop, until_caught_up=True)
            finished.set()

        thread = threading.Thread(target=run_until_caught_up, daemon=True)
        thread.start()
        try:
            assert finished.wait(30), "a consumer with no lag never counted itself caught up"
        finally:
            stop.set()
            thread.join(30)
        assert (again.stats.applied, again.stats.batches) == (0, 0)
    finally:
        store.close()
