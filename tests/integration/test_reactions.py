"""Reactions between agencies through real Kafka: a death on the bus suspends benefits, retires officials."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from consumers.decoder import EventDecoder
from consumers.reactions import REACTIONS, ReactionAdapter
from consumers.reactions.core import reaction_id
from producers.publisher import Publisher
from producers.simulators import benefits
from producers.simulators import residents as register
from producers.simulators.simulation import typed_events
from producers.simulators.world import SimulatedEvent
from schemas.catalog import load_catalog
from schemas.envelope import CloudEvent
from schemas.registry_client import RegistryClient
from tests.support import wait_for

pytestmark = pytest.mark.integration
TOPICS = (
    "localgov.resident",
    "finance.benefit",
    "personnel.civil-servant",
    "finance-reactions.dlq",
    "personnel-reactions.dlq",
)
FINANCE_TYPES = frozenset(
    {register.REGISTERED, register.MOVED, register.DECEASED, benefits.GRANTED, benefits.SUSPENDED}
)
Record = tuple[CloudEvent, dict[str, Any]]


@pytest.fixture
def connection(bus_settings: Settings) -> KafkaConnection:
    """A connection whose input, output and dead-letter topics exist under the test's prefix."""
    conn = KafkaConnection(bus_settings.kafka_bootstrap)
    ensure_topics(conn, [bus_settings.topic_prefix + t for t in TOPICS])
    return conn


@cache
def finance_world() -> tuple[SimulatedEvent, ...]:
    """Registrations, moves, deaths, grants and finance's own suspensions of a small, long-lived world."""
    return tuple(typed_events(FINANCE_TYPES, 2500, seed=3, residents=300))


def open_ended_grant() -> SimulatedEvent:
    """The first grant of the finance world that runs without an end date."""
    grants = (e for e in finance_world() if e.type == benefits.GRANTED)
    return next(e for e in grants if e.data["effective_until"] is None)


def running_at_death(events: Iterable[SimulatedEvent]) -> dict[str, str]:
    """Benefit id → the ce_id of the death that must suspend it (granted, not suspended, not ended)."""
    events = list(events)
    deaths = {e.data["resident_id"]: e for e in events if e.type == register.DECEASED}
    suspended = {e.data["benefit_id"] for e in events if e.type == benefits.SUSPENDED}
    expected = {}
    for event in events:
        data = event.data
        death = deaths.get(data.get("recipient_resident_id", ""))
        if event.type != benefits.GRANTED or death is None or data["benefit_id"] in suspended:
            continue
        if data["effective_until"] is None or data["effective_until"] >= death.data["died_on"]:
            expected[data["benefit_id"]] = death.id
    return expected


def publish(
    settings: Settings,
    connection: KafkaConnection,
    registry: RegistryClient,
    events: Iterable[SimulatedEvent],
) -> None:
    """Publish ``events`` through each agency's publisher SDK, with their ids and times."""
    catalog = load_catalog()
    publishers = {
        agency: Publisher(
            connection,
            registry,
            catalog,
            agency=agency,
            source=f"urn:govbus:agency:{agency}",
            topic_prefix=settings.topic_prefix,
        )
        for agency in ("localgov", "finance", "personnel")
    }
    for event in events:
        publishers[event.agency].publish(event.type, event.data, event_id=event.id, time=event.time)
    for publisher in publishers.values():
        publisher.close()


def adapter(
    name: str, settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> ReactionAdapter[Any]:
    """The reaction adapter ``name`` on the test's topics."""
    return REACTIONS[name](connection, registry, load_catalog(), topic_prefix=settings.topic_prefix)


@contextmanager
def running(reaction: ReactionAdapter[Any]) -> Iterator[ReactionAdapter[Any]]:
    """Run ``reaction`` in a thread for the block; re-raise what stopped it, if anything did."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def target() -> None:
        try:
            reaction.run(stop)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield reaction
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), "the reaction did not stop"
    if failures:
        raise failures[0]


def caught_up(connection: KafkaConnection, group_id: str, topics: Iterable[str]) -> bool:
    """Whether ``group_id`` has committed the end of every partition of ``topics`` (read_committed)."""
    consumer = Consumer(connection.consumer(f"probe-{uuid.uuid4().hex}"))
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [TopicPartition(t, p) for t in topics for p in metadata.topics[t].partitions]
        probe = Consumer(connection.consumer(group_id))
        try:
            committed = {
                (tp.topic, tp.partition): tp.offset for tp in probe.committed(partitions, timeout=10)
            }
        finally:
            probe.close()
        for tp in partitions:
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            if max(committed[(tp.topic, tp.partition)], 0) < high:
                return False
        return True
    finally:
        consumer.close()


def wait_until_caught_up(connection: KafkaConnection, reaction: ReactionAdapter[Any]) -> None:
    """Block until the reaction has decided on everything on its topics, its own output included."""
    wait_for(
        lambda: caught_up(connection, reaction.group_id, reaction.topics),
        timeout_s=90,
        what=f"{reaction.name} to commit the end of its topics",
    )


def read_topic(
    connection: KafkaConnection, registry: RegistryClient, topic: str, committed_only: bool = True
) -> list[Record]:
    """Every committed record of ``topic`` (every record, aborted ones too, unless ``committed_only``)."""
    isolation = "read_committed" if committed_only else "read_uncommitted"
    config = connection.consumer(
        f"reader-{uuid.uuid4().hex}", **{"enable.partition.eof": True, "isolation.level": isolation}
    )
    consumer = Consumer(config)
    decoder = EventDecoder(registry, load_catalog())
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        at_end: set[int] = set()
        records: list[Record] = []
        while len(at_end) < len(partitions):
            for message in consumer.consume(500, timeout=1.0):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    at_end.add(int(message.partition() or 0))
                    continue
                records.append((CloudEvent.from_headers(message.headers()), decoder.decode(message).data))
        return records
    finally:
        consumer.close()


def deceased_suspensions(records: list[Record]) -> list[Record]:
    """The suspensions finance-reactions published (reason RECIPIENT_DECEASED)."""
    return [
        (envelope, data)
        for envelope, data in records
        if envelope.type == benefits.SUSPENDED and data["reason"] == "RECIPIENT_DECEASED"
    ]


def assert_each_running_benefit_suspended_once(
    records: list[Record], events: Iterable[SimulatedEvent]
) -> None:
    """One suspension per benefit running at its recipient's death, citing that death; no other one."""
    events = list(events)
    expected = running_at_death(events)
    suspended_by_finance = {e.data["benefit_id"] for e in events if e.type == benefits.SUSPENDED}
    emitted = deceased_suspensions(records)
    counts = Counter(data["benefit_id"] for _, data in emitted)
    assert len(expected) >= 30
    assert counts.most_common(1)[0][1] == 1, "a benefit suspended twice for a death"
    assert expected.keys() <= counts.keys(), "a benefit of the deceased left running"
    # A benefit finance suspended itself shortly before the death may be suspended again for the death
    # when the reaction reads the death first (the runtime's docstring); no other benefit may be.
    assert counts.keys() - expected.keys() <= suspended_by_finance
    deaths = {e.data["resident_id"]: e.id for e in events if e.type == register.DECEASED}
    for envelope, data in emitted:
        cause = deaths[data["recipient_resident_id"]]
        assert envelope.extensions["causationid"] == cause == data["cause_event_id"]
        assert envelope.id == reaction_id(cause, data["benefit_id"])
        assert envelope.source == "urn:govbus:agency:finance"


def test_a_death_suspends_each_running_benefit_of_the_deceased_once(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """Read committed, finance.benefit holds one suspension per running benefit, caused by the death."""
    events = finance_world()
    publish(bus_settings, connection, registry, events)
    with running(adapter("finance-reactions", bus_settings, connection, registry)) as reaction:
        wait_until_caught_up(connection, reaction)
    records = read_topic(connection, registry, bus_settings.topic_prefix + "finance.benefit")
    assert_each_running_benefit_suspended_once(records, events)
    assert reaction.stats.emitted == len(deceased_suspensions(records))
    assert reaction.stats.rebuilt == 0


def test_a_restart_after_success_rebuilds_its_state_and_emits_nothing_new(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """A second run reads the history up to the committed offsets, then finds nothing left to decide."""
    publish(bus_settings, connection, registry, finance_world())
    with running(adapter("finance-reactions", bus_settings, connection, registry)) as first:
        wait_until_caught_up(connection, first)
    topic = bus_settings.topic_prefix + "finance.benefit"
    before = read_topic(connection, registry, topic)
    ids_before = sorted(envelope.id for envelope, _ in before)
    with running(adapter("finance-reactions", bus_settings, connection, registry)) as second:
        wait_for(second.ready.is_set, what="the second run to rebuild its state")
        wait_until_caught_up(connection, second)
    decisive = [e for e in finance_world() if e.type in second.rules.types]
    assert second.stats.rebuilt == len(decisive) + len(deceased_suspensions(before))
    assert second.stats.emitted == 0
    assert sorted(envelope.id for envelope, _ in read_topic(connection, registry, topic)) == ids_before


def death_report(resident: str, died_on: date) -> SimulatedEvent:
    """A ResidentDeceased of ``resident``, reported on the day of death."""
    data = {
        "resident_id": resident,
        "died_on": died_on,
        "reported_on": died_on,
        "place_sido": "서울특별시",
        "place_sigungu": "종로구",
        "report_type": "DEATH_REPORT",
        "reporting_office": "1111000",
    }
    return SimulatedEvent(register.DECEASED, data, str(uuid.uuid4()), datetime.now(UTC))


def _appointed(servant: str, resident: str) -> SimulatedEvent:
    data = {
        "civil_servant_id": servant,
        "resident_id": resident,
        "name": "김민준",
        "organization_code": "1111000",
        "service_type": "GENERAL",
        "grade": 9,
        "job_series": "행정",
        "appointment_type": "OPEN_COMPETITIVE",
        "appointed_on": date(2012, 3, 2),
        "probation_ends_on": None,
    }
    return SimulatedEvent(
        "govbus.personnel.CivilServantAppointed", data, str(uuid.uuid4()), datetime.now(UTC)
    )


def _promoted(servant: str, resident: str) -> SimulatedEvent:
    data = {
        "civil_servant_id": servant,
        "resident_id": resident,
        "organization_code": "1741000",
        "previous_grade": 9,
        "new_grade": 8,
        "job_series": "행정",
        "promotion_type": "REVIEW",
        "promoted_on": date(2015, 1, 1),
    }
    return SimulatedEvent("govbus.personnel.CivilServantPromoted", data, str(uuid.uuid4()), datetime.now(UTC))


def _resigned(servant: str, resident: str) -> SimulatedEvent:
    data = {
        "civil_servant_id": servant,
        "resident_id": resident,
        "organization_code": "1111000",
        "grade": 9,
        "reason": "VOLUNTARY_RESIGNATION",
        "service_years": 3,
        "retired_on": date(2015, 3, 2),
    }
    return SimulatedEvent("govbus.personnel.CivilServantRetired", data, str(uuid.uuid4()), datetime.now(UTC))


def test_a_death_retires_a_serving_civil_servant_whatever_the_order(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """A serving official who dies is retired once, even when the appointment comes after the death."""
    deaths = {r: death_report(r, date(2025, 3, 14)) for r in ("R1", "R2", "R4")}
    publish(
        bus_settings,
        connection,
        registry,
        [
            _appointed("C1", "R1"),
            _promoted("C1", "R1"),
            _appointed("C2", "R2"),
            _resigned("C2", "R2"),
            _appointed("C3", "R3"),
            deaths["R1"],
            deaths["R2"],
            deaths["R4"],
        ],
    )
    with running(adapter("personnel-reactions", bus_settings, connection, registry)) as reaction:
        wait_until_caught_up(connection, reaction)
        # The personnel system records an appointment only after the resident's death has been reported.
        publish(bus_settings, connection, registry, [_appointed("C4", "R4")])
        wait_for(lambda: reaction.stats.emitted >= 2, what="the retirement of the late appointee")
        wait_until_caught_up(connection, reaction)
    records = read_topic(connection, registry, bus_settings.topic_prefix + "personnel.civil-servant")
    retired = {
        data["civil_servant_id"]: (envelope, data)
        for envelope, data in records
        if data.get("reason") == "DEATH_IN_SERVICE"
    }
    assert sorted(retired) == ["C1", "C4"]
    assert len([1 for _, data in records if data.get("reason") == "DEATH_IN_SERVICE"]) == 2
    envelope, data = retired["C1"]
    assert (data["organization_code"], data["grade"], data["retired_on"]) == ("1741000", 8, date(2025, 3, 14))
    assert envelope.extensions["causationid"] == deaths["R1"].id
    assert envelope.source == "urn:govbus:agency:personnel"
    assert retired["C4"][0].id == reaction_id(deaths["R4"].id, "C4")


def test_an_undecodable_record_is_dead_lettered_in_the_transaction_and_the_reaction_goes_on(
    bus_settings: Settings, connection: KafkaConnection, registry: RegistryClient
) -> None:
    """A death whose body is not wire format goes to finance-reactions.dlq; a later death is acted on."""
    prefix = bus_settings.topic_prefix
    grant = open_ended_grant()
    resident = grant.data["recipient_resident_id"]
    poison = Producer(connection.producer())
    headers = [("ce_type", register.DECEASED.encode()), ("ce_id", b"poison-1")]
    poison.produce(prefix + "localgov.resident", key=b"R-poison", value=b"\x07not avro", headers=headers)
    assert poison.flush(10) == 0
    publish(bus_settings, connection, registry, [grant, death_report(resident, date(2026, 2, 3))])
    with running(adapter("finance-reactions", bus_settings, connection, registry)) as reaction:
        wait_until_caught_up(connection, reaction)
    assert reaction.stats.dead_lettered == 1
    assert reaction.stats.emitted == 1
    consumer = Consumer(connection.consumer(f"dlq-{uuid.uuid4().hex}"))
    try:
        consumer.subscribe([prefix + "finance-reactions.dlq"])
        message = wait_for(lambda: consumer.poll(1.0), what="the dead letter")
        assert message.value() == b"\x07not avro"
        assert message.key() == b"R-poison"
        found = dict(message.headers() or [])
        assert found["ce_id"] == b"poison-1"
        assert found["govbus_dlq_topic"] == (prefix + "localgov.resident").encode()
        assert found["govbus_dlq_error"] == b"SerializationError"
    finally:
        consumer.close()
