"""The projection runtime on a real PostgreSQL: every agency's read models, a restart, a re-shipped copy.

``govbus consume --until-caught-up`` fills a PostgreSQL store from a simulated world of all four
agencies, is started again after more events and applies only those; a BenefitPaid record shipped a
second time (same bytes and event id, a new offset, as an outbox relay does after a crash) changes no
sum. Every table then equals what the same topics make of a SQLite store.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from consumers.adapters import ADAPTERS
from consumers.stores import open_store
from govbus.bootstrap import build_runner
from govbus.topics import create_bus_topics
from producers.simulators.simulation import simulated_events
from schemas.registry_client import RegistryClient
from tests.integration.test_runtime_kill import (
    assert_same_read_models,
    consume_env,
    publish_world,
    start_consume,
    total_paid,
)

pytestmark = pytest.mark.integration
EVENTS = 6000


def catch_up(processes: list[subprocess.Popen[bytes]], env: dict[str, str], log: Path) -> None:
    """Run ``govbus consume --until-caught-up`` (every adapter) to its end; it must exit 0."""
    process = start_consume(processes, env, log, "--until-caught-up")
    assert process.wait(timeout=120) == 0, log.read_text(encoding="utf-8")[-3000:]


def reship_one_payment(settings: Settings) -> str:
    """Produce the first BenefitPaid record of the benefit topic again, byte for byte; returns its id."""
    connection = KafkaConnection(settings.kafka_bootstrap)
    topic = settings.topic_prefix + "finance.benefit"
    reader = Consumer(connection.consumer(group_id=f"reship-{settings.topic_prefix}"))
    reader.subscribe([topic])
    try:
        for _ in range(600):
            message = reader.poll(0.2)
            if message is None or message.error() is not None:
                continue
            headers = dict(message.headers() or [])
            if headers.get("ce_type") == b"govbus.finance.BenefitPaid":
                break
        else:
            raise AssertionError("no BenefitPaid record in the topic")
    finally:
        reader.close()
    producer = Producer(connection.producer())
    producer.produce(
        topic,
        key=message.key(),
        value=message.value(),
        headers=message.headers(),
        partition=int(message.partition() or 0),
    )
    assert producer.flush(10) == 0
    event_id = headers["ce_id"]
    assert isinstance(event_id, bytes)
    return event_id.decode()


def test_the_runner_on_postgresql_restarts_drops_a_copy_and_equals_the_sqlite_result(
    bus_settings: Settings,
    gateway_url: str,
    registry: RegistryClient,
    postgres_database: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """On PostgreSQL a restart applies only new events, a re-shipped payment counts once, SQLite agrees."""
    create_bus_topics(bus_settings)
    registry_url = f"{gateway_url}/registry"
    env = consume_env(bus_settings, registry_url, postgres_database)
    log = tmp_path / "consume.log"
    world = list(simulated_events("all", EVENTS, 23))
    publish_world(bus_settings, registry, world[: EVENTS // 2])
    catch_up(processes, env, log)
    postgres = open_store(postgres_database)
    sqlite_path = tmp_path / "readmodel.sqlite"
    sqlite = open_store(f"sqlite:///{sqlite_path}")
    try:
        halfway = {name: sum(postgres.positions(name).values()) for name in ADAPTERS}
        publish_world(bus_settings, registry, world[EVENTS // 2 :])
        catch_up(processes, env, log)
        moved = [name for name in ADAPTERS if sum(postgres.positions(name).values()) > halfway[name]]
        assert set(moved) == set(ADAPTERS)

        paid = total_paid(postgres)
        copied = reship_one_payment(bus_settings)
        benefits = build_runner(bus_settings, "benefits", store=postgres, registry=registry)
        benefits.run(threading.Event(), until_caught_up=True)
        assert (benefits.stats.applied, benefits.stats.duplicates) == (0, 1), copied
        assert total_paid(postgres) == paid

        catch_up(processes, consume_env(bus_settings, registry_url, f"sqlite:///{sqlite_path}"), log)
        sizes = assert_same_read_models(postgres, sqlite, ADAPTERS)
        assert all(sizes.values()), sizes
    finally:
        postgres.close()
        sqlite.close()
