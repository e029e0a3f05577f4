"""``GET /v1/feeds/{model}`` through a real gateway app and Kafka: delivery, masking, resumption, refusals,
a slow client, disconnects and the audit."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import pytest
from confluent_kafka.admin import AdminClient
from fastapi import FastAPI

from bus.kafka_config import KafkaConnection
from bus.settings import Settings
from bus.topics import ensure_topics
from consumers.decoder import EventDecoder
from gateway.agreements import Agreements
from gateway.audit.entry import AuditEntry, AuditUnavailable
from gateway.auth import Authentication
from gateway.feed_cursor import encode_cursor, parse_cursor
from gateway.feeds import ChangeFeeds, FeedOptions
from gateway.problems import install_problem_handlers
from govbus.bootstrap import agency_source
from producers.publisher import Publisher
from schemas.catalog import load_catalog
from schemas.registry.service import SchemaRegistry
from schemas.registry_client import RegistryClient
from tests.support import bearer, dev_identities, serve_in_thread, wait_for

pytestmark = pytest.mark.integration
WELFARE = "ministry-of-welfare"
PURPOSE = "benefit-eligibility"
REGISTERED = "govbus.localgov.ResidentRegistered"


class RecordingAudit:
    """An audit trail in memory that can be switched to unavailable."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self.unavailable = False

    async def record(self, entry: AuditEntry) -> None:
        """Keep ``entry``, or raise AuditUnavailable when switched off."""
        if self.unavailable:
            raise AuditUnavailable("audit store down")
        self.entries.append(entry)


@dataclass
class Feeds:
    """A served feed app and what a test needs around it."""

    base: str
    feeds: ChangeFeeds
    audit: RecordingAudit
    credentials: dict[str, str]
    publisher: Publisher
    agreements_path: Path


def _agreements(path: Path, fields: list[str]) -> None:
    document = {
        "format": "govbus-agreements/1",
        "agreements": [
            {
                "id": "welfare-residents",
                "organisation": WELFARE,
                "model": "residents",
                "fields": fields,
                "purposes": [{"name": PURPOSE, "legal_basis": "National Basic Living Security Act, art. 22"}],
                "valid_from": "2020-01-01",
                "valid_until": "2099-12-31",
            }
        ],
    }
    path.write_text(json.dumps(document), encoding="utf-8")


class LocalSchemas:
    """The schema ids and texts of an in-process registry, as the publisher and the decoder ask for them."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry

    def lookup(self, subject: str, schema_text: str) -> int:
        """The id of ``schema_text`` under ``subject``."""
        return self.registry.lookup(subject, {"schema": schema_text}).schema_id

    def schema_text(self, schema_id: int) -> str:
        """The schema registered with ``schema_id``."""
        return self.registry.schema(schema_id).text


@pytest.fixture
def served(bus_settings: Settings, tmp_path: Path) -> Iterator[Feeds]:
    """The feed router behind the gateway's authentication, on the test's own residents topic (deleted
    afterwards), served over HTTP; the schemas in an in-process registry, so the test needs no other part
    of the gateway."""
    connection = KafkaConnection(bus_settings.kafka_bootstrap, client_id="govbus-feed-test")
    topics = [bus_settings.topic_prefix + "localgov.resident"]
    ensure_topics(connection, topics)
    identities, credentials = dev_identities(bus_settings.home)
    path = tmp_path / "agreements.json"
    _agreements(path, ["name", "address"])
    audit = RecordingAudit()
    catalog = load_catalog()
    registry = SchemaRegistry.in_memory()
    registry.start()
    for kind in catalog:
        registry.register(kind.subject, {"schema": kind.schema_text})
    schemas = LocalSchemas(registry)
    feeds = ChangeFeeds(
        connection,
        EventDecoder(cast(RegistryClient, schemas), catalog),
        Agreements(path, reload_check_s=0.0),
        audit,
        catalog=catalog,
        topic_prefix=bus_settings.topic_prefix,
        options=FeedOptions(heartbeat_s=1.0),
    )
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(feeds.router())
    app.add_middleware(Authentication, identities=identities)
    publisher = Publisher(
        KafkaConnection(bus_settings.kafka_bootstrap, client_id="govbus-feed-test-localgov"),
        schemas,
        catalog,
        agency="localgov",
        source=agency_source("localgov"),
        topic_prefix=bus_settings.topic_prefix,
    )
    with ExitStack() as stack:
        stack.callback(lambda: AdminClient(connection.admin()).delete_topics(topics, operation_timeout=30))
        stack.callback(registry.close)
        stack.enter_context(publisher)
        base = stack.enter_context(serve_in_thread(app))
        stack.callback(feeds.close)
        yield Feeds(base, feeds, audit, credentials, publisher, path)


def registered(resident_id: str, name: str = "홍길동") -> dict[str, Any]:
    """A ResidentRegistered payload."""
    return {
        "resident_id": resident_id,
        "registration_number": "900101-1234567",
        "name": name,
        "birth_date": date(1990, 1, 1),
        "sex": "FEMALE",
        "nationality": "KR",
        "address": {
            "sido": "서울특별시",
            "sigungu": "종로구",
            "road_address": "세종대로 209",
            "detail": None,
            "postal_code": "03154",
            "admin_code": "1111051500",
        },
        "registered_on": date(2026, 1, 2),
        "registering_office": "1111000",
    }


@dataclass
class SseEvent:
    """One dispatched server-sent event (or comment block)."""

    id: str | None
    data: str
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        """The data as JSON."""
        return json.loads(self.data)


class SseClient:
    """A minimal SSE client on a raw socket, so a test decides exactly when it reads and disconnects."""

    def __init__(
        self, base: str, path: str, headers: dict[str, str], receive_buffer: int | None = None
    ) -> None:
        parts = urlsplit(base)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(30)
        self.sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
        lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.file = self.sock.makefile("rb")
        status_line = self.file.readline().decode()
        self.status = int(status_line.split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline().decode().strip()) != "":
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding") == "chunked"
        self.events: queue.Queue[SseEvent | None] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> SseClient:
        """Start reading in a thread."""
        self.thread.start()
        return self

    def _lines(self) -> Iterator[str]:
        pending = b""
        while True:
            if self.chunked:
                size = int(self.file.readline().strip() or b"0", 16)
                if size == 0:
                    return
                chunk = self.file.read(size)
                self.file.readline()
            else:
                chunk = self.file.read1(65536)
                if not chunk:
                    return
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode()

    def _read(self) -> None:
        event_id: str | None = None
        data: list[str] = []
        comments: list[str] = []
        try:
            for line in self._lines():
                if line == "":
                    self.events.put(SseEvent(event_id, "\n".join(data), comments))
                    event_id, data, comments = None, [], []
                elif line.startswith(":"):
                    comments.append(line[1:].strip())
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "id":
                        event_id = value
                    elif name == "data":
                        data.append(value)
        except (OSError, ValueError):
            pass
        finally:
            self.events.put(None)

    def next(self, timeout: float = 10.0, changes_only: bool = True) -> SseEvent:
        """The next event with data (or any block when not ``changes_only``); fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise AssertionError(f"no event within {timeout}s") from None
            if event is None:
                raise AssertionError("the stream ended")
            if event.data or not changes_only:
                return event

    def changes(self, count: int, timeout: float = 15.0) -> list[SseEvent]:
        """The next ``count`` change events."""
        return [self.next(timeout) for _ in range(count)]

    def quiet_for(self, seconds: float) -> bool:
        """Whether no change event arrives for ``seconds`` (heartbeats allowed)."""
        try:
            self.next(seconds)
        except AssertionError as exc:
            return "no event" in str(exc)
        return False

    def ended(self, timeout: float = 10.0) -> list[SseEvent]:
        """Every block until the stream ends; fails if it does not end within ``timeout``."""
        deadline = time.monotonic() + timeout
        seen: list[SseEvent] = []
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if event is None:
                return seen
            seen.append(event)
        raise AssertionError(f"the stream did not end within {timeout}s")

    def close(self) -> None:
        """Disconnect."""
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            self.file.close()
        with suppress(OSError):
            self.sock.close()
        self.thread.join(timeout=5)


def subscribe(served: Feeds, query: str = "", organisation: str = WELFARE, **headers: str) -> SseClient:
    """A started SSE client of the residents feed whose opening block has arrived."""
    client = SseClient(
        served.base,
        f"/v1/feeds/residents{query}",
        {**bearer(served.credentials[organisation]), "Purpose": PURPOSE, **headers},
    )
    assert client.status == 200, client.file.read1(4096)
    assert client.headers["content-type"].startswith("text/event-stream")
    client.start()
    opening = client.next(changes_only=False)
    assert opening.id is not None
    assert opening.data == ""
    return client


def publish(served: Feeds, *payloads: dict[str, Any]) -> list[str]:
    """Publish ResidentRegistered events and wait until Kafka has them; their event ids."""
    ids = [served.publisher.publish(REGISTERED, p) for p in payloads]
    assert served.publisher.flush(30) == 0
    return ids


def test_a_published_change_arrives_on_the_feed_within_a_second(served: Feeds) -> None:
    """An event published after subscribing arrives as one SSE event with its envelope within 1 s."""
    client = subscribe(served)
    try:
        publish(served, registered("R000000000000"))  # the publisher's first event looks up its route
        client.next(timeout=10)
        started = time.monotonic()
        (event_id,) = publish(served, registered("R000000000001"))
        event = client.next(timeout=5)
        assert time.monotonic() - started < 1.0
        document = event.json()
        assert document["id"] == event_id
        assert document["type"] == REGISTERED
        assert document["subject"] == "R000000000001"
        assert document["topic"] == served.feeds.topics["residents"][0]
        assert document["source"] == "urn:govbus:agency:localgov"
        position = parse_cursor(event.id or "")
        assert position[document["topic"]][document["partition"]] == document["offset"] + 1
    finally:
        client.close()


def test_fields_the_agreement_does_not_grant_are_masked_or_withheld(served: Feeds) -> None:
    """Granted name and address are in clear; the registration number and birth date are masked, the
    sex withheld; the audit names the resident, the key and the protected fields disclosed."""
    client = subscribe(served)
    try:
        publish(served, registered("R000000000002"))
        data = client.next().json()["data"]
    finally:
        client.close()
    assert data["name"] == "홍길동"
    assert data["address"]["road_address"] == "세종대로 209"
    assert data["registration_number"] == "900101-1******"
    assert data["birth_date"] == "1990"
    assert data["sex"] is None
    assert data["nationality"] is None
    assert data["registered_on"] == "2026-01-02"
    disclosed = [e for e in served.audit.entries if e.outcome == "disclosed"]
    assert len(disclosed) == 1
    assert disclosed[0].keys == ("R000000000002",)
    assert disclosed[0].subjects == ("R000000000002",)
    assert disclosed[0].fields == ("address", "name")
    assert disclosed[0].purpose == PURPOSE
    assert disclosed[0].agreement == "welfare-residents"
    subscribed = [e for e in served.audit.entries if e.outcome == "subscribed"]
    assert [(e.action, e.organisation, e.model) for e in subscribed] == [("feed", WELFARE, "residents")]


def test_a_changed_agreement_changes_what_the_next_events_disclose(served: Feeds) -> None:
    """With ``name`` no longer granted, the next event's name is masked to its initial."""
    client = subscribe(served)
    try:
        _agreements(served.agreements_path, ["address"])
        publish(served, registered("R000000000003"))
        data = client.next().json()["data"]
    finally:
        client.close()
    assert data["name"] == "홍**"


def test_reconnecting_with_the_last_event_id_misses_nothing_and_repeats_nothing(served: Feeds) -> None:
    """Read 2 of 5, disconnect, publish 5 more: Last-Event-ID or ?after= resume with exactly the 8 others."""
    client = subscribe(served)
    first = publish(served, *[registered(f"R00000000010{n}") for n in range(5)])
    read = client.changes(2)
    client.close()
    second = publish(served, *[registered(f"R00000000020{n}") for n in range(5)])
    last = read[-1].id or ""
    expected = sorted(set(first + second) - {e.json()["id"] for e in read})
    assert {e.json()["id"] for e in read} <= set(first)
    for how in ({"Last-Event-ID": last}, {}):
        query = "" if how else f"?after={last}"
        again = subscribe(served, query, **how)
        try:
            events = again.changes(8)
            assert sorted(e.json()["id"] for e in events) == expected
            assert again.quiet_for(1.5)
        finally:
            again.close()


def test_the_header_cursor_wins_over_the_query_cursor(served: Feeds) -> None:
    """An EventSource reconnecting keeps its old ?after= and sends a newer Last-Event-ID: the header wins."""
    client = subscribe(served)
    publish(served, registered("R000000000301"), registered("R000000000302"))
    one, two = client.changes(2)
    client.close()
    again = subscribe(served, f"?after={one.id}", **{"Last-Event-ID": two.id or ""})
    try:
        assert again.quiet_for(1.5)
    finally:
        again.close()


def test_from_beginning_and_a_key_filter(served: Feeds) -> None:
    """?from=beginning replays the retained log; ?key= keeps only that resident's events."""
    publish(
        served, registered("R000000000401"), registered("R000000000402"), registered("R000000000401", "김")
    )
    everything = subscribe(served, "?from=beginning")
    one = subscribe(served, "?from=beginning&key=R000000000401")
    try:
        assert len(everything.changes(3)) == 3
        events = one.changes(2)
        assert {e.json()["subject"] for e in events} == {"R000000000401"}
        assert one.quiet_for(1.0)
    finally:
        everything.close()
        one.close()


def _get(served: Feeds, path: str, organisation: str = WELFARE, **headers: str) -> httpx.Response:
    return httpx.get(
        f"{served.base}{path}", headers={**bearer(served.credentials[organisation]), **headers}, timeout=30
    )


def test_no_agreement_or_a_wrong_purpose_is_refused_with_the_reason(served: Feeds) -> None:
    """403 problem+json before any stream: no agreement, no purpose, a purpose not agreed, a wrong role."""
    cases = [
        ("ministry-of-education", {"Purpose": PURPOSE}, "has no sharing agreement"),
        (WELFARE, {}, "state the purpose"),
        (WELFARE, {"Purpose": "tax-audit"}, "allowed: benefit-eligibility"),
        ("localgov", {"Purpose": PURPOSE}, "needs role ministry"),
    ]
    for organisation, headers, reason in cases:
        answer = _get(served, "/v1/feeds/residents", organisation, **headers)
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert reason in answer.json()["detail"]
    refused = [e for e in served.audit.entries if e.outcome == "refused"]
    assert len(refused) == 3
    assert served.feeds.live() == 0


def test_bad_cursors_and_unknown_models_get_problems(served: Feeds) -> None:
    """A malformed cursor, another model's, one ahead of the log: 400; an unknown model 404; bad from 422."""
    topic = served.feeds.topics["residents"][0]
    other = served.feeds.topics["vehicles"][0]
    cases = [
        ("/v1/feeds/residents?after=!!!", {}, 400),
        ("/v1/feeds/residents?after=", {}, 400),
        ("/v1/feeds/residents", {"Last-Event-ID": "eyJ4IjoxfQ"}, 400),
        (f"/v1/feeds/residents?after={encode_cursor({other: {0: 0}})}", {}, 400),
        (f"/v1/feeds/residents?after={encode_cursor({topic: {0: 10**9}})}", {}, 400),
        (f"/v1/feeds/residents?after={encode_cursor({topic: {99: 0}})}", {}, 400),
        ("/v1/feeds/nothing", {}, 404),
        ("/v1/feeds/residents?from=yesterday", {}, 422),
        ("/v1/feeds/residents?key=", {}, 422),
    ]
    for path, headers, status in cases:
        answer = _get(served, path, Purpose=PURPOSE, **headers)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    assert served.feeds.live() == 0


def test_a_slow_client_does_not_delay_another_clients_delivery(served: Feeds) -> None:
    """A client that does not read a large backlog pauses its own consumer; another client still gets a new
    change within 1 s, and the slow one later reads the whole backlog without a gap."""
    backlog = 5000
    for n in range(backlog):
        served.publisher.publish(REGISTERED, registered(f"R{n:012d}", name="가" * 1500))
    assert served.publisher.flush(60) == 0
    slow = SseClient(
        served.base,
        "/v1/feeds/residents?from=beginning",
        {**bearer(served.credentials[WELFARE]), "Purpose": PURPOSE},
        receive_buffer=4096,
    )
    assert slow.status == 200
    try:
        wait_for(lambda: any(s.paused for s in served.feeds.subscriptions()), 30, "the slow feed to pause")
        fast = subscribe(served)
        try:
            started = time.monotonic()
            (marker,) = publish(served, registered("R999999999999"))
            assert fast.next(timeout=5).json()["id"] == marker
            assert time.monotonic() - started < 1.0
        finally:
            fast.close()
        slow.start()
        events = [e.json() for e in slow.changes(backlog + 1, timeout=60)]
        offsets: dict[int, list[int]] = {}
        for event in events:
            offsets.setdefault(event["partition"], []).append(event["offset"])
        for found in offsets.values():
            assert found == list(range(found[0], found[0] + len(found)))
        assert events[-1]["id"] == marker or marker in {e["id"] for e in events}
    finally:
        slow.close()


def test_disconnecting_closes_the_consumer(served: Feeds) -> None:
    """Three open feeds hold three consumers; once their clients disconnect none is left, nor its thread."""
    clients = [subscribe(served) for _ in range(3)]
    assert served.feeds.live() == 3
    for client in clients:
        client.close()
    wait_for(lambda: served.feeds.live() == 0, 10, "every feed consumer to close")
    wait_for(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("feed-residents-")],
        10,
        "the feed threads to end",
    )


def test_a_heartbeat_keeps_an_idle_feed_alive(served: Feeds) -> None:
    """With no change for longer than the heartbeat interval, a keepalive comment arrives."""
    client = subscribe(served)
    try:
        block = client.next(timeout=5, changes_only=False)
        assert block.comments == ["keepalive"]
    finally:
        client.close()


def test_an_unavailable_audit_refuses_the_subscription_and_ends_a_running_feed(served: Feeds) -> None:
    """Audit down at subscribe: 503; audit down before a batch: the stream ends and sends nothing more."""
    client = subscribe(served)
    served.audit.unavailable = True
    try:
        answer = _get(served, "/v1/feeds/residents", Purpose=PURPOSE)
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        publish(served, registered("R000000000501"))
        assert [e for e in client.ended() if e.data] == []
        wait_for(lambda: served.feeds.live() == 0, 10, "the feed consumer to close")
    finally:
        client.close()


def test_the_latency_bench_measures_a_running_feed(served: Feeds) -> None:
    """bench.feed.feed_latency at 1,000 events/s for 3 s receives every event, p99 within a second."""
    from bench.feed import feed_latency

    result = feed_latency(
        served.base, served.credentials[WELFARE], PURPOSE, served.publisher, rate=1000, duration_s=3
    )
    print(f"feed latency: p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, max {result.max_ms:.1f} ms")
    assert result.received == result.published >= 2500
    assert result.meets_target, result
