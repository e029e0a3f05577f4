"""``govbus outbox relay`` killed with SIGKILL mid-batch and restarted: every outbox row still arrives.

Each run kills the relay twice. The first kill is placed exactly: the test holds the database's write
lock, so the relay publishes its next batch, gets Kafka's acknowledgements and then cannot mark them;
that is when it dies, and all of that batch must be published again. The second kill lands wherever
the relay happens to be. A third relay (``--once``) drains the rest. The topic then has to hold every
outbox event id, any duplicate must be a byte-identical copy of its first occurrence, and the first
occurrences must keep each aggregate's order.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from bus.credentials import client_credential
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from producers.outbox import ensure_schema
from producers.outbox_store import OutboxDatabase, open_database
from schemas.catalog import load_catalog
from schemas.catalog_sync import register_catalog
from schemas.registry_client import RegistryClient
from tests.integration.test_outbox_relay import (
    PARTITIONS,
    TOPIC,
    ce_id,
    fill_outbox,
    read_topic,
    simulated_events,
)
from tests.support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
ROWS = 3000
BATCH = 100


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An agency database with an empty outbox, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "agency.sqlite"
        connection = sqlite3.connect(path)
        ensure_schema(connection)
        connection.close()
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    with psycopg.connect(url, autocommit=True) as connection:
        # Without it the server would finish a killed relay's UPDATE that waits on the test's table
        # lock (harmless: Kafka had those rows) instead of dropping it, and the first kill would not
        # leave the duplicates this test looks for.
        name = url.rsplit("/", 1)[1]
        connection.execute(f'ALTER DATABASE "{name}" SET client_connection_check_interval = 100')
    return url


@contextmanager
def relay_cannot_mark(url: str) -> Iterator[None]:
    """Hold the lock the relay's UPDATE of sent_at needs; reading and publishing stay possible."""
    if url.startswith("sqlite:///"):
        sqlite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
        sqlite.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            sqlite.execute("ROLLBACK")
            sqlite.close()
        return
    with psycopg.connect(url) as postgres:
        postgres.execute("LOCK TABLE govbus_outbox IN SHARE MODE")
        yield
        # Release only once the killed relay's server session, which waits on this lock, has ended.
        wait_for(lambda: not _lock_waiters(url), what="the killed relay's session to end")
        postgres.rollback()


def _lock_waiters(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as probe:
        found = probe.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(found[0]) if found else 0


def start_relay(
    url: str, settings: Settings, registry_url: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """``python -m govbus outbox relay`` as its own process, as an operator would run it."""
    env = {
        **os.environ,
        "GOVBUS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "GOVBUS_REGISTRY_URL": registry_url,
        "GOVBUS_HOME": str(settings.home),
        "GOVBUS_TOPIC_PREFIX": settings.topic_prefix,
        "GOVBUS_LOG_FORMAT": "json",
    }
    argv = [sys.executable, "-m", "govbus", "outbox", "relay", "--db", url, "--agency", "localgov"]
    argv += ["--batch", str(BATCH), "--poll-interval", "0.1", *extra]
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def in_topic(watermarks: Consumer, topic: str) -> int:
    """How many records ``topic`` holds (the sum of its partitions' high watermarks)."""
    return sum(
        watermarks.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no handler runs, nothing is flushed or closed."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def test_a_relay_killed_mid_batch_loses_nothing_and_duplicates_only_same_id_copies(
    bus_settings: Settings, gateway_url: str, outbox_url: str, tmp_path: Path
) -> None:
    """After two SIGKILLs and a restart every row is in Kafka, in per-key order, duplicates identical."""
    registry = RegistryClient(f"{gateway_url}/registry", credential=client_credential(bus_settings))
    register_catalog(registry, load_catalog())
    registry.close()
    topic = bus_settings.topic_prefix + TOPIC
    connection = KafkaConnection(bus_settings.kafka_bootstrap)
    ensure_topics(connection, [topic], partitions=PARTITIONS)
    events = simulated_events(ROWS, seed=41, residents=300)
    fill_outbox(outbox_url, events)
    observer: OutboxDatabase = open_database(outbox_url)
    watermarks = Consumer(connection.consumer(group_id=f"watermarks-{bus_settings.topic_prefix}"))
    log = tmp_path / "relay.log"
    registry_url = f"{gateway_url}/registry"

    # Kill 1, exactly placed: batches marked, then one batch acknowledged by Kafka but not marked.
    first = start_relay(outbox_url, bus_settings, registry_url, log)
    wait_for(lambda: observer.counts().sent >= 5 * BATCH, what="the relay to mark some batches")
    with relay_cannot_mark(outbox_url):
        marked = observer.counts().sent
        wait_for(lambda: in_topic(watermarks, topic) >= marked + BATCH, what="the next batch in Kafka")
        kill(first)
    published_at_kill = in_topic(watermarks, topic)
    assert observer.counts().sent == marked < len(events)
    assert published_at_kill == marked + BATCH

    # Kill 2, wherever the relay is once it has marked a little more.
    second = start_relay(outbox_url, bus_settings, registry_url, log)
    wait_for(lambda: observer.counts().sent >= marked + 3 * BATCH, what="the restarted relay to ship")
    kill(second)
    marked_at_second_kill = observer.counts().sent

    drain = start_relay(outbox_url, bus_settings, registry_url, log, "--once")
    assert drain.wait(timeout=120) == 0, log.read_text(encoding="utf-8")
    assert (observer.counts().pending, observer.counts().sent) == (0, len(events))
    observer.close()
    watermarks.close()

    records = read_topic(bus_settings.kafka_bootstrap, topic)
    first_copy: dict[str, tuple[bytes | None, bytes | None, object]] = {}
    first_order: dict[bytes, list[str]] = {}
    duplicates = 0
    for message in records:
        event_id = ce_id(message)
        copy = (message.key(), message.value(), sorted(message.headers() or []))
        if event_id in first_copy:
            duplicates += 1
            assert first_copy[event_id] == copy, f"duplicate {event_id} differs from its first copy"
            continue
        first_copy[event_id] = copy
        first_order.setdefault(message.key() or b"", []).append(event_id)
    assert set(first_copy) == {event.id for event in events}
    for key, ids in first_order.items():
        assert ids == [e.id for e in events if e.data["resident_id"].encode() == key], key
    assert duplicates >= BATCH
    print(  # the measured figures, for `pytest -s` and the README
        f"\n[{outbox_url.partition(':')[0]}] rows={len(events)} batch={BATCH} first kill: marked={marked} "
        f"published={published_at_kill}; second kill: marked={marked_at_second_kill}; "
        f"records={len(records)} duplicates={duplicates}"
    )


def test_sigterm_stops_the_relay_cleanly_with_exit_code_zero(
    bus_settings: Settings, gateway_url: str, tmp_path: Path
) -> None:
    """SIGTERM ends a running relay after its current batch, with exit code 0 and a closing summary."""
    registry = RegistryClient(f"{gateway_url}/registry", credential=client_credential(bus_settings))
    register_catalog(registry, load_catalog())
    registry.close()
    ensure_topics(
        KafkaConnection(bus_settings.kafka_bootstrap),
        [bus_settings.topic_prefix + TOPIC],
        partitions=PARTITIONS,
    )
    path = tmp_path / "agency.sqlite"
    connection = sqlite3.connect(path)
    ensure_schema(connection)
    connection.close()
    url = f"sqlite:///{path}"
    events = simulated_events(200, seed=42)
    fill_outbox(url, events)
    log = tmp_path / "relay.log"
    relay = start_relay(url, bus_settings, f"{gateway_url}/registry", log)
    observer = open_database(url)
    wait_for(lambda: observer.counts().sent == len(events), what="the relay to ship every row")
    observer.close()
    relay.send_signal(signal.SIGTERM)
    assert relay.wait(timeout=30) == 0
    output = log.read_text(encoding="utf-8")
    assert f"shipped {len(events)} events; the outbox is empty" in output
    assert f"outbox relay stopped: shipped {len(events)} events" in output
