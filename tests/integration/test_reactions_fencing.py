"""Two processes of one reaction: the second fences the first, so the two never emit side by side."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from bus.errors import PublishError
from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from schemas.registry_client import RegistryClient
from tests.integration.test_reactions import (
    TOPICS,
    adapter,
    death_report,
    deceased_suspensions,
    open_ended_grant,
    publish,
    read_topic,
    running,
    wait_until_caught_up,
)
from tests.support import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def connection(bus_settings: Settings) -> KafkaConnection:
    """A connection whose input, output and dead-letter topics exist under the test's prefix."""
    conn = KafkaConnection(bus_settings.kafka_bootstrap)
    ensure_topics(conn, [bus_settings.topic_prefix + t for t in TOPICS])
    return conn


def test_a_second_process_of_a_reaction_fences_the_first(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """Once a second adapter of the same reaction starts, the first stops on its next transaction."""
    grant = open_ended_grant()
    publish(bus_settings, connection, registry, [grant])
    first = adapter("finance-reactions", bus_settings, connection, registry)
    stop_first = threading.Event()
    failures: list[BaseException] = []

    def run_first() -> None:
        try:
            first.run(stop_first)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run_first, daemon=True)
    thread.start()
    try:
        wait_until_caught_up(connection, first)
        with running(adapter("finance-reactions", bus_settings, connection, registry)) as second:
            wait_for(second.ready.is_set, what="the second adapter to start emitting")
            death = death_report(grant.data["recipient_resident_id"], date(2026, 2, 3))
            publish(bus_settings, connection, registry, [death])
            thread.join(timeout=60)
            assert not thread.is_alive(), "the fenced adapter kept running"
            wait_for(lambda: second.stats.emitted == 1, what="the second adapter to suspend the benefit")
            wait_until_caught_up(connection, second)
    finally:
        stop_first.set()
        thread.join(timeout=60)
    assert len(failures) == 1
    assert isinstance(failures[0], PublishError)
    assert "fenced" in str(failures[0])
    assert first.stats.emitted == 0
    topic = bus_settings.topic_prefix + "finance.benefit"
    assert len(deceased_suspensions(read_topic(connection, registry, topic))) == 1
