"""The outbox relay: ships outbox rows to Kafka in ``seq`` order and marks them sent once Kafka has them.

One round: read up to ``batch_size`` unsent rows (lowest ``seq`` first), publish each through the
publisher SDK with its stored event id, time and extensions, wait until Kafka has answered for every
one (acks=all, idempotent producer), then set ``sent_at`` on the rows Kafka acknowledged, in ``seq``
order up to the first one it did not. Nothing is marked before Kafka acknowledged it, so a relay
killed at any point (SIGKILL included) loses no row: the next relay ships every unmarked row again.
What it may do is publish a row twice, which is then the same event (same ``ce_id``, key, payload
and time) at a new offset: a consumer that deduplicates by event id drops the copy; the projections
that skip by offset only see it again (harmless for a read model that keeps the latest state, since
the rows after it are shipped again in order too, not for one that sums). Because the rows after an
unacknowledged one stay unmarked too and are shipped again in order, the first occurrence of each
event keeps the per-key order.

Failures:

* a delivery Kafka refused, an unreachable registry or a database error is transient: the relay
  logs it, closes the database, waits (exponential back-off up to :data:`MAX_BACKOFF_S`) and starts
  over with a new producer. With ``once=True`` it raises instead, as does a database that cannot be
  opened the first time (a wrong URL should not look like an outage);
* a row that can never be published (an event type not in this agency's catalog, a payload that
  no longer decodes) raises after the rows before it are shipped and marked: the relay stops rather
  than skip it, because every later row of its aggregate would overtake it.

``stop`` (the CLI sets it on SIGTERM/SIGINT) is checked between batches: the batch in flight is
finished and marked first.
"""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastavro import json_reader, parse_schema

from bus.errors import GovbusError, PublishError, RegistryError, SchemaNotFoundError, SerializationError
from producers.outbox import schema_fingerprint
from producers.outbox_store import OutboxDatabase, OutboxDatabaseError, OutboxRow
from producers.publisher import Publisher
from schemas.catalog import Catalog, EventType

log = structlog.get_logger(__name__)

FLUSH_STEP_S = 1.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
TRANSIENT = (PublishError, RegistryError, OutboxDatabaseError)


@dataclass
class RelayStats:
    """What a relay has done so far; ``state`` is ``starting``, ``standby``, ``shipping`` or ``idle``."""

    shipped: int = 0
    batches: int = 0
    retries: int = 0
    state: str = "starting"
    started: float = field(default_factory=time.monotonic)


ProgressCallback = Callable[[RelayStats], None]


class PayloadReader:
    """Reads a stored Avro JSON payload back into the record the relay's catalog schema describes."""

    def __init__(self, catalog: Catalog, agency: str) -> None:
        self._catalog = catalog
        self._agency = agency
        self._current: dict[str, str] = {}
        self._writers: dict[str, Any] = {}

    def read(self, row: OutboxRow, database: OutboxDatabase) -> dict[str, Any]:
        """The row's payload; raises SchemaNotFoundError or SerializationError for a row that cannot ship."""
        kind = self._catalog.get(row.event_type)
        if kind.agency != self._agency:
            raise SchemaNotFoundError(
                f"outbox row seq={row.seq} holds {kind.full_name}, not an event type of {self._agency!r}"
            )
        writer = self._writer_schema(kind, row, database)
        try:
            reader = json_reader(
                io.StringIO(row.payload), writer, None if writer is kind.parsed else kind.parsed
            )
            value = next(iter(reader))
        except Exception as exc:  # fastavro raises many types for data that does not fit
            raise SerializationError(
                f"outbox row seq={row.seq} ({row.event_id}): payload is not a {kind.full_name}: {exc}"
            ) from exc
        if not isinstance(value, dict):
            raise SerializationError(f"outbox row seq={row.seq} ({row.event_id}): payload is not a record")
        return value

    def _writer_schema(self, kind: EventType, row: OutboxRow, database: OutboxDatabase) -> Any:
        current = self._current.get(kind.full_name)
        if current is None:
            current = self._current[kind.full_name] = schema_fingerprint(kind.parsed)
        if row.schema_fingerprint == current:
            return kind.parsed
        writer = self._writers.get(row.schema_fingerprint)
        if writer is None:
            text = database.writer_schema(row.schema_fingerprint)
            if text is None:
                raise SchemaNotFoundError(
                    f"outbox row seq={row.seq}: writer schema {row.schema_fingerprint} "
                    "is not in govbus_outbox_schema"
                )
            writer = self._writers[row.schema_fingerprint] = parse_schema(json.loads(text))
        return writer


class OutboxRelay:
    """Moves one agency's outbox rows to Kafka; one :meth:`run` per process."""

    def __init__(
        self,
        open_database: Callable[[], OutboxDatabase],
        catalog: Catalog,
        agency: str,
        new_publisher: Callable[[], Publisher],
        *,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self._open_database = open_database
        self._reader = PayloadReader(catalog, agency)
        self._new_publisher = new_publisher
        self._publisher: Publisher | None = None
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self._on_progress = on_progress
        self.stats = RelayStats()

    def run(self, stop: threading.Event, *, once: bool = False) -> RelayStats:
        """Ship rows until ``stop`` is set, or with ``once`` until the outbox is empty."""
        backoff = FIRST_BACKOFF_S
        opened = False
        while not stop.is_set():
            database: OutboxDatabase | None = None
            shipped_before = self.stats.shipped
            try:
                database = self._open_database()
                opened = True
                if not self._become_active(database, stop):
                    break
                self._ship_until(database, stop, once)
                break
            except TRANSIENT as exc:
                if once or not opened:
                    raise
                if self.stats.shipped > shipped_before:
                    backoff = FIRST_BACKOFF_S
                self.stats.retries += 1
                log.warning("outbox.relay.retry", error=str(exc), wait_s=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            finally:
                if database is not None:
                    database.close()
        log.info("outbox.relay.stopped", shipped=self.stats.shipped, batches=self.stats.batches)
        return self.stats

    def _become_active(self, database: OutboxDatabase, stop: threading.Event) -> bool:
        """Wait (as a standby) until no other relay holds the outbox; False when stopped first."""
        while not database.try_lock():
            if self.stats.state != "standby":
                log.info("outbox.relay.standby", database=database.where)
                self._progress("standby")
            if stop.wait(self.poll_interval_s):
                return False
        log.info("outbox.relay.active", database=database.where, batch_size=self.batch_size)
        return True

    def _ship_until(self, database: OutboxDatabase, stop: threading.Event, once: bool) -> None:
        while not stop.is_set():
            rows = database.pending(self.batch_size)
            if rows:
                self._ship(database, rows)
                self._progress("shipping")
                continue
            self._progress("idle")
            if once:
                return
            stop.wait(self.poll_interval_s)

    def _ship(self, database: OutboxDatabase, rows: list[OutboxRow]) -> None:
        publisher = self._publisher or self._start_publisher()
        outcomes: dict[str, PublishError | None] = {}
        queued: list[OutboxRow] = []
        problem: GovbusError | None = None
        for row in rows:
            try:
                publisher.publish(
                    row.event_type,
                    self._reader.read(row, database),
                    event_id=row.event_id,
                    time=row.occurred_at,
                    extensions=row.extensions,
                    on_delivery=outcomes.__setitem__,
                )
            except GovbusError as exc:
                problem = exc
                break
            queued.append(row)
        # Every queued record gets an answer: acknowledged, or failed once message.timeout.ms passes.
        while publisher.flush(FLUSH_STEP_S) > 0:
            log.debug("outbox.relay.awaiting_acks", queued=len(queued))
        acked = list(
            itertools.takewhile(lambda row: row.event_id in outcomes and not outcomes[row.event_id], queued)
        )
        if acked:
            database.mark_sent([row.seq for row in acked])
            self.stats.shipped += len(acked)
            self.stats.batches += 1
            log.debug("outbox.relay.batch", shipped=len(acked), last_seq=acked[-1].seq)
        if len(acked) < len(queued):
            first = queued[len(acked)]
            problem = outcomes.get(first.event_id) or PublishError(f"{first.event_id}: no delivery report")
            log.error("outbox.relay.undelivered", seq=first.seq, event_id=first.event_id, error=str(problem))
        if isinstance(problem, PublishError):
            self._publisher = None  # a fresh producer for the retry, with no state from the failure
        if problem is not None:
            raise problem

    def _start_publisher(self) -> Publisher:
        self._publisher = self._new_publisher()
        return self._publisher

    def _progress(self, state: str) -> None:
        self.stats.state = state
        if self._on_progress is not None:
            self._on_progress(self.stats)
