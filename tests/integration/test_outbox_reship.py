"""Outbox rows shipped twice by a relay killed between send and mark change every sum once.

A finance agency writes its benefit events into its transactional outbox (SQLite) and ships them with
``govbus outbox relay``. The crash is placed exactly, as in the outbox kill test: the test holds the
database's write lock, the relay publishes a batch of two payments of one benefit, Kafka acknowledges
them, the relay cannot mark them sent and is SIGKILLed. The next relay ships both rows again: the
benefit topic then holds each of those event ids at two offsets. The batch is two successive payments
of one benefit so that the copy of the first arrives after another payment of that benefit: the
benefits projection's own copy rule (a payment equal to the benefit's *last* payment) cannot catch
it, only the runtime's record of applied event ids can.

The real read-model runner (``build_runner(settings, "benefits")``) then replays the topic into a
SQLite store and into a PostgreSQL store; in each, every payment counts once and the runner's stats
show the two copies as duplicates.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from consumers.projections.finance import BENEFITS
from consumers.stores import open_store
from govbus.bootstrap import build_runner
from govbus.topics import create_bus_topics
from producers.outbox import Outbox, ensure_schema
from producers.outbox_store import open_database
from producers.simulators.simulation import simulated_events
from producers.simulators.world import SimulatedEvent
from schemas.catalog import load_catalog
from schemas.registry_client import RegistryClient
from tests.integration.test_outbox_kill import in_topic, relay_cannot_mark
from tests.integration.test_outbox_relay import ce_id, read_topic
from tests.integration.test_runtime_kill import total_paid
from tests.support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
TOPIC = "finance.benefit"
PAID = "govbus.finance.BenefitPaid"
BENEFIT_TYPES = frozenset({"govbus.finance.BenefitGranted", PAID, "govbus.finance.BenefitSuspended"})


def benefit_story() -> tuple[list[SimulatedEvent], list[SimulatedEvent], list[SimulatedEvent]]:
    """Simulated benefit events split as (before, the two payments to ship twice, after).

    The two are successive payments of one benefit with nothing else of that benefit between them; the
    first is moved next to the second, which keeps every event of every benefit in its order.
    """
    events = [e for e in simulated_events("finance", 1500, 61) if e.type in BENEFIT_TYPES]
    last: dict[str, int] = {}
    for index, event in enumerate(events):
        benefit = event.data["benefit_id"]
        before = last.get(benefit)
        last[benefit] = index
        if event.type == PAID and before is not None and events[before].type == PAID and index > 100:
            first, second = events[before], event
            break
    else:
        raise AssertionError("no benefit with two successive payments in the simulated events")
    head = [e for e in events[:index] if e is not first]
    return head, [first, second], events[index + 1 :]


def fill_outbox(path: Path, events: list[SimulatedEvent]) -> None:
    """Add ``events`` in one business transaction of the finance agency."""
    outbox = Outbox(load_catalog(), "finance")
    connection = sqlite3.connect(path)
    try:
        for event in events:
            outbox.add(connection, event.type, event.data, event_id=event.id, time=event.time)
        connection.commit()
    finally:
        connection.close()


def relay(settings: Settings, registry_url: str, url: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``python -m govbus outbox relay`` for the finance agency, as an operator runs it."""
    env = {
        **os.environ,
        "GOVBUS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "GOVBUS_REGISTRY_URL": registry_url,
        "GOVBUS_HOME": str(settings.home),
        "GOVBUS_TOPIC_PREFIX": settings.topic_prefix,
        "GOVBUS_LOG_FORMAT": "json",
    }
    argv = [sys.executable, "-m", "govbus", "outbox", "relay", "--db", url, "--agency", "finance"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*argv, "--poll-interval", "0.1", *extra], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def drain(settings: Settings, registry_url: str, url: str, log: Path) -> None:
    """Ship every pending row with ``relay --once``; it must exit 0."""
    process = relay(settings, registry_url, url, log, "--once")
    assert process.wait(timeout=120) == 0, log.read_text(encoding="utf-8")[-3000:]


def test_two_outbox_rows_shipped_twice_count_once_on_sqlite_and_postgresql(
    bus_settings: Settings,
    gateway_url: str,
    registry: RegistryClient,
    postgres_database: str,
    tmp_path: Path,
) -> None:
    """A relay killed between send and mark ships two payments twice; each store counts each payment once."""
    create_bus_topics(bus_settings)
    topic = bus_settings.topic_prefix + TOPIC
    registry_url = f"{gateway_url}/registry"
    head, twice, tail = benefit_story()
    path = tmp_path / "finance.sqlite"
    connection = sqlite3.connect(path)
    ensure_schema(connection)
    connection.close()
    url = f"sqlite:///{path}"
    log = tmp_path / "relay.log"
    fill_outbox(path, head)
    drain(bus_settings, registry_url, url, log)

    fill_outbox(path, twice)
    observer = open_database(url)
    watermarks = Consumer(
        KafkaConnection(bus_settings.kafka_bootstrap).consumer(group_id="reship-watermarks")
    )
    try:
        with relay_cannot_mark(url):
            crashing = relay(bus_settings, registry_url, url, log)
            wait_for(lambda: in_topic(watermarks, topic) == len(head) + 2, what="both payments in Kafka")
            crashing.send_signal(signal.SIGKILL)
            crashing.wait(timeout=10)
        assert (observer.counts().pending, observer.counts().sent) == (2, len(head))
    finally:
        watermarks.close()
        observer.close()
    fill_outbox(path, tail)
    drain(bus_settings, registry_url, url, log)

    events = [*head, *twice, *tail]
    records = read_topic(bus_settings.kafka_bootstrap, topic)
    copies = Counter(ce_id(m) for m in records)
    assert len(records) == len(events) + 2
    assert {event_id for event_id, count in copies.items() if count > 1} == {e.id for e in twice}
    for event in twice:
        places = [(m.partition(), m.offset()) for m in records if ce_id(m) == event.id]
        assert len(set(places)) == 2, places

    payments = [e for e in events if e.type == PAID]
    benefit = twice[0].data["benefit_id"]
    own = [e.data["amount"] for e in payments if e.data["benefit_id"] == benefit]
    for store_url in (f"sqlite:///{tmp_path / 'readmodel.sqlite'}", postgres_database):
        store = open_store(store_url)
        try:
            runner = build_runner(bus_settings, "benefits", store=store, registry=registry)
            stats = runner.run(threading.Event(), until_caught_up=True)
            assert total_paid(store) == sum((e.data["amount"] for e in payments), Decimal(0)), store_url
            row = next(r for r in store.dump(BENEFITS) if r["benefit_id"] == benefit)
            assert (row["payment_count"], row["total_paid"]) == (len(own), sum(own, Decimal(0))), store_url
            assert (stats.applied, stats.duplicates, stats.dead_lettered) == (len(events), 2, 0), store_url
        finally:
            store.close()
