"""``GET /v1/feeds/{model}``: a ministry follows the changes of a read model as server-sent events.

A feed carries the events of the model's topics (the events that change the model), each as one SSE
event whose ``data`` is a CloudEvents-like JSON object::

    id: eyJ0b3BpYyI6eyIwIjo0Mn19
    data: {"specversion":"1.0","id":"...","type":"govbus.localgov.ResidentMoved",
           "source":"urn:govbus:agency:localgov","time":"2026-12-02T10:00:00.123+00:00",
           "subject":"R000000000001","topic":"localgov.resident","partition":0,"offset":41,"data":{...}}

(one line on the wire).

``data.data`` is the decoded payload as the caller's agreement lets it see it
(:mod:`gateway.event_disclosure`: personal and sensitive fields the agreement does not grant are masked
or withheld). ``subject`` is the record's Kafka key (the aggregate id).

Decisions:

- **Who**: a credential of role ``ministry`` only. Feeds disclose personal data under sharing agreements;
  agencies publish, the integration team manages schemas and auditors read the audit trail, so none of
  them follows a feed (an agreement is still needed on top of the role).
- **Why**: every request names its purpose in the ``Purpose`` header, decided by
  :meth:`Agreements.decide` for the model, today; a refusal answers 403 problem+json with the reason
  before any stream starts. The agreement is decided again for each batch of events, so a withdrawn or
  expired agreement ends a running feed (with a comment saying why) and a changed one changes what the
  next events disclose.
- **Where it starts**: every SSE ``id:`` is a cursor (:mod:`gateway.feed_cursor`) holding, for every
  partition of the model's topics, the offset after that event. ``Last-Event-ID`` (what an EventSource
  sends when it reconnects) or ``?after=CURSOR`` resumes right after that event: nothing missed, nothing
  repeated. The header wins over the query, because an EventSource reconnects to the same URL (with its
  old ``after``) and a newer ``Last-Event-ID``. Without a cursor the feed starts at the end (only changes
  made after the subscription), or at the beginning of the retained log with ``?from=beginning``. A
  partition a cursor does not name (added since) is read from its beginning. A malformed cursor, one of
  another model's topics or one ahead of the log answers 400. The start offsets are looked up (the last
  stable offset, as read_committed sees it) before the answer starts, so a change committed after the
  response headers arrive is always delivered. Records deleted by retention before a resume are gone.
- **Opening**: the stream starts with a block holding only the starting cursor as its ``id:`` (and a
  ``retry:`` hint), so a client that reconnects before any change arrives resumes from its subscription.
- **Filter**: ``?key=R000000000001`` delivers only the events of that Kafka key (the cursor still
  advances over the others).
- **Per subscription**: its own confluent-kafka consumer, assigned the partitions at explicit offsets (no
  group membership, no commits; its group id is a throwaway), polled by a worker thread of its own. The
  worker decodes and discloses batches of up to ``max_batch`` events and hands them to the connection
  through at most ``queue_batches`` credits: a client that does not read keeps its batches unsent, its
  worker runs out of credits and pauses its consumer (librdkafka's prefetch is bounded too), so a slow
  client slows only itself. A heartbeat comment (``: keepalive``) goes out after ``heartbeat_s`` without
  events. When the client disconnects the worker stops and closes its consumer within about
  ``poll_s``; :meth:`ChangeFeeds.live` counts the consumers still open. At most ``max_subscriptions`` feeds
  run at once per gateway (503 beyond).
- **Audit** (:mod:`gateway.audit.entry`): one entry when a subscription opens (action ``feed``, outcome
  ``subscribed``), one for each refusal by the agreements (outcome ``refused``, the reason as detail), each
  before the answer, which is 503 problem+json when the audit is unavailable (as the query API does); and
  one per batch of events *before* it is sent
  (outcome ``disclosed``: the event keys, the resident ids present in clear, the protected fields disclosed
  in clear). When that record fails (AuditUnavailable) the stream sends nothing more and ends.
- **Ends**: a record that cannot be decoded (not govbus wire format, a type the catalog does not know) is
  skipped and logged; a failure of Kafka or the registry ends the stream with a comment, and the client
  resumes with its last id. :meth:`ChangeFeeds.close` ends every stream (and refuses new ones): a server
  waits for open responses when it shuts down, so whoever runs the app calls it when shutdown begins (or
  gives the server a graceful-shutdown timeout, which cancels the streams and so stops their consumers).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import orjson
import structlog
from confluent_kafka import Consumer, IsolationLevel, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec
from fastapi import APIRouter, Depends, Query, Request
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from bus.errors import SchemaNotFoundError, SerializationError
from bus.kafka_config import KafkaConnection
from consumers.events import DecodedEvent
from consumers.projections import READ_MODELS
from gateway.agreements import AccessRefused, Agreements, Grant
from gateway.audit.entry import AuditEntry, AuditLog, AuditUnavailable
from gateway.auth import require
from gateway.event_disclosure import EventDisclosure
from gateway.feed_cursor import BadCursor, Positions, encode_cursor, parse_cursor
from gateway.identities import Identity, Role
from gateway.problems import Problem, documented_errors
from schemas.catalog import Catalog, load_catalog

log = structlog.get_logger(__name__)

PREFIX = "/v1/feeds"
EVENT_STREAM = "text/event-stream"
KEEPALIVE = b": keepalive\n\n"
RETRY_MS = 2000
"""The reconnection delay an EventSource is told to use."""
MAX_KEY = 256
MAX_PURPOSE = 200
FEED = "feed"
LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]
EARLIEST = OffsetSpec.earliest()  # type: ignore[no-untyped-call]


class FeedDecoder(Protocol):
    """Decodes a Kafka record of a catalog event (:class:`consumers.decoder.EventDecoder` is one)."""

    def decode(self, message: Message) -> DecodedEvent:
        """The decoded event; SerializationError (or SchemaNotFoundError) for a record that is not one."""


@dataclass(frozen=True)
class FeedOptions:
    """The limits and pace of the change feeds."""

    heartbeat_s: float = 15.0
    """A ``: keepalive`` comment goes out after this long without events."""
    max_subscriptions: int = 64
    """Feeds open at once in one gateway; more answer 503."""
    queue_batches: int = 8
    """Batches a worker may decode ahead of its client before it pauses its consumer."""
    max_batch: int = 500
    """Events in one batch (one audit entry, one write to the client) at most."""
    max_batch_bytes: int = 256 * 1024
    """Record bytes in one batch at most (a batch always holds at least one record): with
    ``queue_batches`` it bounds what a client that does not read costs the gateway's memory."""
    poll_s: float = 0.1
    """How long a worker waits for records (or credits) at a time; also how soon it sees a stop."""
    kafka_timeout_s: float = 5.0
    """Time allowed for the metadata and offset lookups of a subscription (503 beyond)."""
    today: Callable[[], date] = date.today
    """The day agreements are decided for."""


@dataclass(frozen=True)
class Batch:
    """Events a worker decoded and disclosed, rendered as SSE, with what the audit names."""

    body: bytes
    events: int
    grant: Grant
    keys: tuple[str, ...]
    subjects: tuple[str, ...]
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Ended:
    """The worker stopped for ``reason``; the stream says so and ends."""

    reason: str


class Unavailable(Exception):  # noqa: N818 - answered as 503 problem+json
    """Kafka did not answer a subscription's lookups, or a topic of the model does not exist."""


class ChangeFeeds:
    """The change feeds of every read model: subscriptions, their consumers and the router serving them.

    ``connection`` reaches the Kafka cluster; ``decoder`` decodes its records (an
    :class:`~consumers.decoder.EventDecoder`, whose writer schemas come from the registry); ``agreements``
    decide each request; ``audit`` records subscriptions and disclosures; ``catalog`` describes the
    events (the shipped catalog when None); ``topic_prefix`` is the deployment's topic prefix.
    """

    def __init__(
        self,
        connection: KafkaConnection,
        decoder: FeedDecoder,
        agreements: Agreements,
        audit: AuditLog,
        *,
        catalog: Catalog | None = None,
        topic_prefix: str = "",
        options: FeedOptions | None = None,
    ) -> None:
        self.connection = connection
        self.decoder = decoder
        self.agreements = agreements
        self.audit = audit
        self.catalog = catalog or load_catalog()
        self.options = options or FeedOptions()
        self.topics = {
            name: tuple(topic_prefix + topic for topic in build().topics)
            for name, build in READ_MODELS.items()
        }
        self.disclosure = EventDisclosure()
        self._admin: AdminClient | None = None
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()
        self._reserved = 0
        self._closed = False
        self._numbers = itertools.count(1)

    def live(self) -> int:
        """Subscriptions whose consumer is still open."""
        with self._lock:
            return len(self._subscriptions)

    def subscriptions(self) -> list[Subscription]:
        """The subscriptions whose consumer is still open."""
        with self._lock:
            return list(self._subscriptions)

    def close(self) -> None:
        """End every feed (each worker closes its consumer) and refuse new subscriptions with 503."""
        with self._lock:
            self._closed = True
            self._admin = None
            running = list(self._subscriptions)
        for subscription in running:
            subscription.stop()

    def router(self) -> APIRouter:
        """The ``/v1/feeds/{model}`` route."""
        return _router(self)

    # -- subscribing -----------------------------------------------------------------------------------

    def _reserve(self) -> None:
        with self._lock:
            if self._closed:
                raise Problem(503, "Service unavailable", "the gateway is shutting down; retry shortly")
            if len(self._subscriptions) + self._reserved >= self.options.max_subscriptions:
                raise Problem(
                    503,
                    "Service unavailable",
                    f"this gateway serves {self.options.max_subscriptions} feeds at most; retry later",
                    {"Retry-After": "5"},
                )
            self._reserved += 1

    def _release(self) -> None:
        with self._lock:
            self._reserved -= 1

    def _admin_client(self) -> AdminClient:
        with self._lock:
            if self._admin is None:
                self._admin = AdminClient(self.connection.admin())
            return self._admin

    def _start_positions(self, model: str, cursor: Positions | None, start: str) -> Positions:
        """Where a new subscription starts in every partition of ``model``'s topics (blocking)."""
        timeout = self.options.kafka_timeout_s
        admin = self._admin_client()
        topics = self.topics[model]
        try:
            metadata = admin.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise Unavailable(f"Kafka does not answer: {exc}") from exc
        partitions: list[TopicPartition] = []
        for topic in topics:
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                raise Unavailable(f"topic {topic!r} of {model!r} does not exist")
            partitions += [TopicPartition(topic, p) for p in sorted(found.partitions)]
        if cursor is not None:
            _check_cursor_topics(cursor, partitions, model)
        latest = self._offsets(admin, partitions, LATEST)
        earliest = self._offsets(admin, partitions, EARLIEST)
        positions: Positions = {}
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if cursor is None:
                offset = earliest[key] if start == "beginning" else latest[key]
            else:
                offset = cursor.get(tp.topic, {}).get(tp.partition, earliest[key])
                if offset > latest[key]:
                    raise BadCursor(
                        f"the cursor is ahead of {tp.topic} partition {tp.partition} "
                        f"(offset {offset}, the log ends at {latest[key]}); subscribe without one"
                    )
            positions.setdefault(tp.topic, {})[tp.partition] = offset
        return positions

    def _offsets(
        self, admin: AdminClient, partitions: Sequence[TopicPartition], spec: OffsetSpec
    ) -> dict[tuple[str, int], int]:
        timeout = self.options.kafka_timeout_s
        try:
            futures = admin.list_offsets(
                dict.fromkeys(partitions, spec),
                isolation_level=IsolationLevel.READ_COMMITTED,
                request_timeout=timeout,
            )
            return {
                (tp.topic, tp.partition): int(f.result(timeout=timeout).offset) for tp, f in futures.items()
            }
        except (KafkaException, TimeoutError) as exc:
            raise Unavailable(f"Kafka does not answer the offsets of the feed's partitions: {exc}") from exc

    def _consumer(self, positions: Positions) -> Consumer:
        config = self.connection.consumer(
            f"govbus-feed-{uuid.uuid4().hex}",
            **{
                "queued.min.messages": 1000,
                "queued.max.messages.kbytes": 1024,
                "fetch.wait.max.ms": 250,
                "enable.partition.eof": False,
            },
        )
        consumer = Consumer(config)
        consumer.assign(
            [TopicPartition(t, p, offset) for t, parts in positions.items() for p, offset in parts.items()]
        )
        return consumer

    def _opened(self, subscription: Subscription) -> None:
        with self._lock:
            self._reserved -= 1
            self._subscriptions.add(subscription)
            closing = self._closed
        if closing:
            subscription.stop()

    def _forget(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)


def _check_cursor_topics(cursor: Positions, partitions: Sequence[TopicPartition], model: str) -> None:
    known = {(tp.topic, tp.partition) for tp in partitions}
    topics = {tp.topic for tp in partitions}
    for topic, parts in cursor.items():
        if topic not in topics:
            raise BadCursor(f"the cursor is not one of the {model!r} feed (it names topic {topic[:100]!r})")
        for partition in parts:
            if (topic, partition) not in known:
                raise BadCursor(f"the cursor names partition {partition} of {topic}, which does not exist")


@dataclass(eq=False)
class Subscription:
    """One open feed: its consumer, the worker thread polling it and the batches waiting for the client."""

    feeds: ChangeFeeds
    identity: Identity
    model: str
    purpose: str
    key: str | None
    positions: Positions
    consumer: Consumer
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Batch | Ended] = field(default_factory=asyncio.Queue)
    delivered: int = 0
    """Events the worker decoded, disclosed and queued for the connection so far."""
    paused: bool = False
    """Whether the worker paused its consumer because its client does not read."""

    def __post_init__(self) -> None:
        self.credits = threading.Semaphore(self.feeds.options.queue_batches)
        self.closed = threading.Event()
        self._stop = threading.Event()
        self._carry: list[Message] = []
        number = next(self.feeds._numbers)
        self.thread = threading.Thread(target=self._run, name=f"feed-{self.model}-{number}", daemon=True)

    def start(self) -> None:
        """Start polling."""
        self.thread.start()

    def stop(self) -> None:
        """Ask the worker to stop; it closes the consumer within about ``poll_s``."""
        self._stop.set()

    def cursor(self) -> str:
        """The cursor of where the subscription started (before any event is polled)."""
        return encode_cursor(self.positions)

    def _run(self) -> None:
        options = self.feeds.options
        try:
            while not self._stop.is_set():
                if not self.credits.acquire(timeout=options.poll_s):
                    self._pause(True)
                    continue
                self._pause(False)
                try:
                    item = self._next()
                except Exception as exc:
                    log.warning("change feed stopped", model=self.model, error=str(exc))
                    self._hand(Ended(f"the feed stopped: {str(exc)[:300]}; resume with the last id"))
                    return
                if item is None:
                    self.credits.release()
                    continue
                self._hand(item)
                if isinstance(item, Ended):
                    return
        finally:
            with contextlib.suppress(KafkaException, RuntimeError):
                self.consumer.close()
            self.closed.set()
            self.feeds._forget(self)

    def _pause(self, pause: bool) -> None:
        if pause == self.paused:
            return
        assignment = self.consumer.assignment()
        if pause:
            self.consumer.pause(assignment)
        else:
            self.consumer.resume(assignment)
        self.paused = pause

    def _hand(self, item: Batch | Ended) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone: nobody reads this feed any more
            self._stop.set()

    def _next(self) -> Batch | Ended | None:
        """The next batch of events (None when there is none yet)."""
        options = self.feeds.options
        messages, self._carry = self._carry, []
        if not messages:
            first = self.consumer.poll(options.poll_s)
            if first is None:
                return None
            messages = [first]
            if options.max_batch > 1:
                messages += self.consumer.consume(options.max_batch - 1, timeout=0)
        size = 0
        for index, message in enumerate(messages):
            size += len(message.value() or b"")
            if size > options.max_batch_bytes and index > 0:
                messages, self._carry = messages[:index], messages[index:]
                break
        try:
            grant = self.feeds.agreements.decide(
                self.identity.organisation, self.model, self.purpose, options.today()
            )
        except AccessRefused as exc:
            return Ended(f"the feed ended: {exc}")
        return self._batch(messages, grant)

    def _batch(self, messages: list[Message], grant: Grant) -> Batch | None:
        feeds = self.feeds
        frames: list[bytes] = []
        keys: dict[str, None] = {}
        subjects: set[str] = set()
        fields: set[str] = set()
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("change feed consumer error", model=self.model, error=str(error))
                continue
            topic, partition, offset = str(message.topic()), message.partition() or 0, message.offset() or 0
            self.positions[topic][partition] = offset + 1
            raw_key = message.key()
            key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else ""
            if self.key is not None and key != self.key:
                continue
            try:
                event = feeds.decoder.decode(message)
                kind = feeds.catalog.get(event.type)
            except (SerializationError, SchemaNotFoundError) as exc:
                log.warning(
                    "change feed skips a record",
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    error=str(exc),
                )
                continue
            disclosed = feeds.disclosure.disclose(kind, event.data, grant.agreement)
            document = {
                "specversion": "1.0",
                "id": event.id,
                "type": event.type,
                "source": event.source,
                "time": event.time.isoformat(),
                "subject": key,
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "data": disclosed.data,
            }
            cursor = encode_cursor(self.positions).encode("ascii")
            frames.append(b"id: " + cursor + b"\ndata: " + orjson.dumps(document) + b"\n\n")
            keys[key] = None
            subjects |= disclosed.residents
            fields |= disclosed.disclosed
        if not frames:
            return None
        self.delivered += len(frames)
        return Batch(
            b"".join(frames), len(frames), grant, tuple(keys), tuple(sorted(subjects)), tuple(sorted(fields))
        )


def _entry(
    identity: Identity, model: str, outcome: str, grant: Grant | None, purpose: str | None = None, **more: Any
) -> AuditEntry:
    if grant is None:
        more["purpose"] = purpose
    return AuditEntry.by(identity, FEED, model, grant, outcome=outcome, **more)


def _router(feeds: ChangeFeeds) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["feeds"])
    options = feeds.options
    errors = documented_errors(
        {
            400: "a malformed cursor (Last-Event-ID or after), or one that is not of this feed",
            401: "no credential, or an unknown or revoked one",
            403: "the role is not ministry, or no sharing agreement allows this purpose today",
            404: "no read model of this name",
            422: "a query parameter out of its range",
            503: "Kafka or the audit trail unavailable, or too many feeds open",
        }
    )
    responses: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "server-sent events: one per change of the model, each with its cursor as id",
            "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
        },
        **errors,
    }

    @router.get("/{model}", responses=responses, response_class=StreamingResponse)
    async def feed(
        request: Request,
        model: str,
        identity: Identity = Depends(require(Role.MINISTRY)),  # noqa: B008 - FastAPI's dependency idiom
        after: str | None = Query(None, description="resume after the event with this id (cursor)"),
        key: str | None = Query(None, min_length=1, max_length=MAX_KEY, description="only this Kafka key"),
        start: str = Query("end", alias="from", pattern="^(beginning|end)$", description="without a cursor"),
    ) -> StreamingResponse:
        """Follow the changes of a read model as server-sent events (see the module's documentation)."""
        if model not in feeds.topics:
            raise Problem(
                404, "Not found", f"no read model {model[:100]!r}; feeds: {', '.join(feeds.topics)}"
            )
        header = request.headers.get("last-event-id", "").strip()
        text = header or after
        try:
            cursor = None if text is None else parse_cursor(text)
        except BadCursor as exc:
            raise Problem(400, "Bad request", f"bad cursor: {exc}") from exc
        purpose = request.headers.get("purpose", "").strip()[:MAX_PURPOSE] or None
        try:
            grant = feeds.agreements.decide(identity.organisation, model, purpose, options.today())
        except AccessRefused as exc:
            refused = _entry(identity, model, "refused", None, purpose, detail=str(exc))
            try:
                await feeds.audit.record(refused)
            except AuditUnavailable as failed:
                raise _audit_down(failed) from exc
            raise Problem(403, "Forbidden", str(exc)) from exc
        assert purpose is not None  # a grant names the purpose asked for
        subscription, opening = await _subscribe(feeds, identity, model, purpose, grant, key, cursor, start)
        return StreamingResponse(
            _stream(feeds, subscription, opening),
            media_type=EVENT_STREAM,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=BackgroundTask(subscription.stop),
        )

    return router


async def _subscribe(
    feeds: ChangeFeeds,
    identity: Identity,
    model: str,
    purpose: str,
    grant: Grant,
    key: str | None,
    cursor: Positions | None,
    start: str,
) -> tuple[Subscription, str]:
    """Open a subscription (its consumer at its start positions), audit it and start its worker; the
    subscription and its opening cursor."""
    feeds._reserve()
    try:
        positions = await run_in_threadpool(feeds._start_positions, model, cursor, start)
        consumer = await run_in_threadpool(feeds._consumer, positions)
    except BadCursor as exc:
        feeds._release()
        raise Problem(400, "Bad request", f"bad cursor: {exc}") from exc
    except Unavailable as exc:
        feeds._release()
        raise Problem(503, "Service unavailable", str(exc), {"Retry-After": "5"}) from exc
    except BaseException:
        feeds._release()
        raise
    subscription = Subscription(
        feeds, identity, model, purpose, key, positions, consumer, asyncio.get_running_loop()
    )
    opening = subscription.cursor()
    try:
        await feeds.audit.record(
            _entry(
                identity,
                model,
                "subscribed",
                grant,
                keys=(key,) if key else (),
                detail=f"from {'cursor ' + opening if cursor else start}",
            )
        )
    except BaseException as exc:
        feeds._release()
        _close_quietly(consumer)  # no group to leave: quick, and safe under cancellation
        if isinstance(exc, AuditUnavailable):
            raise _audit_down(exc) from exc
        raise
    feeds._opened(subscription)
    subscription.start()
    return subscription, opening


def _audit_down(exc: AuditUnavailable) -> Problem:
    return Problem(
        503,
        "Service unavailable",
        f"the access could not be audited, so nothing is disclosed: {exc}",
        {"Retry-After": "5"},
    )


def _close_quietly(consumer: Consumer) -> None:
    with contextlib.suppress(KafkaException, RuntimeError):
        consumer.close()


async def _stream(feeds: ChangeFeeds, subscription: Subscription, opening: str) -> AsyncIterator[bytes]:
    """The SSE body of one subscription; stops its worker however it ends."""
    heartbeat = feeds.options.heartbeat_s
    try:
        yield f": subscribed to {subscription.model}\nretry: {RETRY_MS}\nid: {opening}\n\n".encode()
        while True:
            try:
                item = await asyncio.wait_for(subscription.queue.get(), heartbeat)
            except TimeoutError:
                yield KEEPALIVE
                continue
            if isinstance(item, Ended):
                yield f": {item.reason}\n\n".encode()
                return
            try:
                await feeds.audit.record(
                    _entry(
                        subscription.identity,
                        subscription.model,
                        "disclosed",
                        item.grant,
                        keys=item.keys,
                        subjects=item.subjects,
                        fields=item.fields,
                        detail=f"{item.events} events",
                    )
                )
            except AuditUnavailable:
                log.warning("change feed ended: the audit trail is unavailable", model=subscription.model)
                return
            yield item.body
            subscription.credits.release()
    finally:
        subscription.stop()


def feeds_router(
    connection: KafkaConnection,
    decoder: FeedDecoder,
    agreements: Agreements,
    audit: AuditLog,
    *,
    catalog: Catalog | None = None,
    topic_prefix: str = "",
    options: FeedOptions | None = None,
) -> APIRouter:
    """The ``/v1/feeds/{model}`` router of a new :class:`ChangeFeeds` (see it for the parameters); keep
    a :class:`ChangeFeeds` yourself instead when you need :meth:`ChangeFeeds.close` at shutdown."""
    return ChangeFeeds(
        connection, decoder, agreements, audit, catalog=catalog, topic_prefix=topic_prefix, options=options
    ).router()
