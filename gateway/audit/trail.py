"""The subject view's source: the audit topic followed into an in-memory index, resident id → records.

:class:`AuditTrail` reads the audit topic from its beginning (read_committed: only committed links) in
one background thread and keeps, for each resident id named in a record's ``subjects``, the records
about that resident in log order, as the subject view shows them (no keys, no other subjects, no
credential: a resident sees who processed their data, why and with which outcome, never other residents'
ids). Decisions:

- **Read-your-writes.** :meth:`AuditTrail.caught_up` waits (bounded) until the trail has consumed past
  given offsets: the view passes the offsets its own audit log last committed, so a read audited a moment
  before, by this gateway, is in the next answer, and so is the view's own ``audit-read`` record.
  Records of other gateway instances appear as soon as the trail reads them (eventually).
- **Read when asked.** The trail reads the topic to its end when it starts, then pauses its partitions
  once no view has asked for :data:`IDLE_S` seconds; a view resumes it. A paused trail costs the broker
  no fetches and the gateway no parsing: following every audit block as it was written took about a
  fifth of a gateway's capacity for audited reads (the broker's fetch answers, and a second Python thread
  parsing beside the event loop, which then waits for the interpreter lock).
- **Memory.** The whole index lives in memory and is rebuilt from the topic at each start, which suits a
  development bus and a few million records; a deployment with years of audit records would keep the
  index in a store instead (same topic, same records).
- A record that does not parse is skipped here (``govbus audit verify`` is what reports it).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from bus.kafka_config import KafkaConnection
from gateway.audit.chain import parse_records
from gateway.audit.topic import ensure_audit_topic, partitions, reader

log = structlog.get_logger(__name__)
SHOWN = (
    "time",
    "writer",
    "seq",
    "organisation",
    "role",
    "action",
    "model",
    "fields",
    "purpose",
    "legal_basis",
    "agreement",
    "outcome",
    "detail",
)
"""The members of a record the subject view shows."""
CATCH_UP_S = 5.0
IDLE_S = 5.0
"""Seconds without a view after which the trail stops reading (it catches up at the next view)."""


FOLLOW_BATCH = 500
"""Records the trail takes from Kafka per call at most."""


class AuditTrail:
    """Follows the audit topic and indexes its records by subject (resident id)."""

    def __init__(self, connection: KafkaConnection, topic: str) -> None:
        self.topic = topic
        self._connection = connection
        self._consumer: Consumer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._by_subject: dict[str, list[dict[str, Any]]] = {}
        self._positions: dict[int, int] = {}
        self._at_end: set[int] = set()
        self._partitions: list[int] = []
        self._ready = threading.Event()
        self._asked = threading.Event()
        self._last_asked = time.monotonic()
        self._paused = False
        self._ends: dict[int, int] = {}
        self._ends_round = 0
        """How many times the following thread read the topic's end offsets after a view asked."""
        self.records = 0
        """Records read so far (those that parse)."""

    def start(self) -> None:
        """Create the topic if needed and start following it from its beginning (returns at once)."""
        ensure_audit_topic(self._connection, self.topic)
        consumer = reader(self._connection)
        self._partitions = partitions(consumer, self.topic)
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self._partitions])
        self._consumer = consumer
        self._thread = threading.Thread(target=self._follow, name=f"audit-trail {self.topic}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop following the topic."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    @property
    def ready(self) -> bool:
        """Whether the trail has read the topic to its end at least once."""
        return self._ready.is_set()

    def subject(self, resident_id: str) -> list[dict[str, Any]]:
        """The records about ``resident_id`` read so far, oldest first (a copy)."""
        with self._lock:
            return list(self._by_subject.get(resident_id, ()))

    def position(self) -> Mapping[int, int]:
        """Partition → the next offset the trail will read."""
        return dict(self._positions)

    @property
    def paused(self) -> bool:
        """Whether the trail has stopped reading for want of views (see the module)."""
        return self._paused

    def has_read(self, targets: Mapping[int, int]) -> bool:
        """Whether the trail read the whole topic once and every record at or below ``targets``' offsets."""
        if not self._ready.is_set():
            return False
        positions = self._positions
        return all(positions.get(partition, 0) > offset for partition, offset in targets.items())

    async def caught_up(self, targets: Mapping[int, int], timeout_s: float = CATCH_UP_S) -> bool:
        """Wait until the trail has read every record at or below ``targets``' offsets and the topic up to
        where it ended when this call began, at most ``timeout_s``; whether it did."""
        deadline = time.monotonic() + timeout_s
        asked_round = self._ends_round
        self._last_asked = time.monotonic()
        self._asked.set()
        pause = 0.002
        while not (self._ends_round > asked_round and self.has_read(targets) and self._at(self._ends)):
            if time.monotonic() >= deadline or self._stop.is_set():
                return False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
        return True

    def _at(self, ends: Mapping[int, int]) -> bool:
        positions = self._positions
        return all(positions.get(partition, 0) >= end for partition, end in ends.items())

    # -- the following thread ------------------------------------------------------------------

    def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        assigned = [TopicPartition(self.topic, p) for p in self._partitions]
        while not self._stop.is_set():
            if self._asked.is_set():
                self._asked.clear()
                if self._paused:
                    consumer.resume(assigned)
                    self._paused = False
                self._ends = self._read_ends(consumer)
                self._ends_round += 1
            elif self._ready.is_set() and time.monotonic() - self._last_asked > IDLE_S:
                if not self._paused:
                    consumer.pause(assigned)
                    self._paused = True
                self._asked.wait(0.2)
                continue
            # In batches: one call per few hundred records, not one per record.
            for message in consumer.consume(FOLLOW_BATCH, 0.1):
                partition = message.partition() or 0
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        self._reached_end(partition, message.offset())
                    elif error.fatal():
                        log.error("audit.trail.failed", topic=self.topic, error=error.str())
                        return
                    continue
                self._index(message.value())
                self._positions = {**self._positions, partition: (message.offset() or 0) + 1}

    def _read_ends(self, consumer: Consumer) -> dict[int, int]:
        """Each partition's end offset now (none for a partition Kafka did not answer for: the view then
        waits only for this gateway's own records there)."""
        ends: dict[int, int] = {}
        for partition in self._partitions:
            try:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=1.0, cached=False
                )
            except KafkaException as exc:
                log.warning("audit.trail.end_unknown", topic=self.topic, partition=partition, error=str(exc))
                continue
            ends[partition] = high
        return ends

    def _reached_end(self, partition: int, offset: int | None) -> None:
        if offset is not None and offset > self._positions.get(partition, 0):
            self._positions = {**self._positions, partition: offset}
        self._at_end.add(partition)
        if not self._ready.is_set() and self._at_end >= set(self._partitions):
            self._ready.set()
            log.info("audit.trail.ready", topic=self.topic, records=self.records)

    def _index(self, value: bytes | None) -> None:
        try:
            records = parse_records(value)
        except ValueError:
            return
        for record in records:
            subjects = record.get("subjects")
            if not isinstance(subjects, list):
                continue
            shown = {name: record.get(name) for name in SHOWN}
            with self._lock:
                for subject in dict.fromkeys(s for s in subjects if isinstance(s, str)):
                    self._by_subject.setdefault(subject, []).append(shown)
            self.records += 1
