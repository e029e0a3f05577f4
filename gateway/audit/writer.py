"""The gateway's audit log on Kafka: every audited request becomes a link of this instance's hash chain.

:class:`KafkaAuditLog` writes :mod:`~gateway.audit.chain` records to the audit topic
(:mod:`~gateway.audit.topic`), keyed by the writer id. Decisions:

- **Group commit.** :meth:`KafkaAuditLog.record` (called on the event loop) queues the entry and awaits
  it; one background thread takes every entry waiting at that moment, chains them, produces them and
  commits them in **one** Kafka transaction, then answers all their callers. Many requests share a
  transaction, so auditing costs a queue put and a future per request, not a round trip each.
- **The chain never forks and never has holes.** A round's records are chained from the last
  *committed* record. Any failure aborts the transaction, fails that round's callers with
  :class:`~gateway.audit.entry.AuditUnavailable` and drops the producer; the next round starts a new
  producer (its ``init_transactions`` finishes whatever the old one left: a commit that was sent is
  completed, anything else aborted) and then reads where the chain really ends from the topic
  (read_committed) before chaining anything. So a commit whose outcome was unknown is never chained over.
- **Every record must have an offset.** A delivery report without an offset (librdkafka inferring it
  from a later batch, see :mod:`bus.delivery`) fails the round, as a refused record does.
- **One writer id, one live writer.** The ``transactional.id`` is derived from the topic and the writer
  id, so a second instance with the same writer id fences the first; a fenced log stops for good (every
  later ``record`` raises AuditUnavailable and the error log says why) rather than fence back and forth.
  Two live gateways must have distinct writer ids (``GOVBUS_AUDIT_WRITER``; default
  ``gateway-<hostname>``).
- **Bounded wait.** A caller waits at most ``timeout_s`` (5 s). When its entry was still queued it is
  withdrawn (never written); when a round had it, the round may still commit it: a record may then exist
  for a request that was answered 503, never the reverse.
- **Where it starts.** On start the log creates the topic if needed, fences any zombie of its writer id
  and finds its last committed record (reading backwards from the topic's end), and continues that chain.
"""

from __future__ import annotations

import asyncio
import queue
import re
import socket
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from bus.delivery import delivery_failure
from bus.errors import ConfigurationError, GovbusError
from bus.kafka_config import KafkaConnection
from gateway.audit.chain import GENESIS, audit_time, chained
from gateway.audit.entry import AuditEntry, AuditUnavailable
from gateway.audit.topic import Tail, ensure_audit_topic, find_tail, reader

log = structlog.get_logger(__name__)
AUDIT_TIMEOUT_S = 5.0
"""How long :meth:`KafkaAuditLog.record` waits for its record's commit."""
TXN_TIMEOUT_S = 5.0
"""How long starting a producer, a flush or a commit may wait for Kafka."""
MAX_ROUND_RECORDS = 2000
"""Records of one transaction at most."""
WRITER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
FENCED = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH})


def default_writer_id() -> str:
    """``gateway-<hostname>`` (characters a writer id may not hold replaced by ``-``)."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()) or "localhost"
    return f"gateway-{host}"[:100]


def writer_id(configured: str) -> str:
    """The writer id to use: ``configured`` when given (checked), otherwise :func:`default_writer_id`."""
    if not configured:
        return default_writer_id()
    if not WRITER_ID.fullmatch(configured):
        raise ConfigurationError(
            f"audit writer id {configured!a} is not valid: 1 to 100 of A-Z, a-z, 0-9, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return configured


@dataclass
class _Pending:
    entry: AuditEntry
    time: str
    outcome: Future[None] = field(default_factory=Future)


class _RoundFailedError(Exception):
    """A round could not commit (the message says why)."""


class KafkaAuditLog:
    """The audit log of one writer on the audit topic (see the module's documentation)."""

    def __init__(
        self,
        connection: KafkaConnection,
        topic: str,
        writer: str,
        *,
        timeout_s: float = AUDIT_TIMEOUT_S,
        compression: str = "lz4",
    ) -> None:
        self.topic = topic
        self.writer = writer_id(writer)
        self.transactional_id = f"govbus-audit-{topic}-{self.writer}"
        self.timeout_s = timeout_s
        self._connection = connection
        self._compression = compression
        self._key = self.writer.encode()
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"audit {self.writer}", daemon=True)
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._tail: Tail | None = None
        self._tail_known = False
        self._committed: dict[int, int] = {}
        self._offsets: dict[int, int] = {}
        self._failures: list[str] = []
        self._fenced_seen = False
        self._fenced: str | None = None
        self._started = False
        self._closed = False
        self.rounds = 0
        """Transactions committed so far (records share them: see the module's documentation)."""

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Create the topic if needed, fence zombies of this writer id, find the chain's end, start the
        sender thread. ConfigurationError or KafkaUnavailableError when Kafka does not answer."""
        ensure_audit_topic(self._connection, self.topic)
        self._consumer = reader(self._connection)
        try:
            self._ready()
        except (KafkaException, _RoundFailedError) as exc:
            raise ConfigurationError(f"the audit log could not start on {self.topic!r}: {exc}") from exc
        self._started = True
        self._thread.start()
        tail = self._tail
        log.info("audit.log.started", topic=self.topic, writer=self.writer, seq=tail.seq if tail else 0)

    def close(self) -> None:
        """Commit what is queued, stop the thread and release the Kafka clients."""
        self._closed = True
        if self._started:
            self._queue.put(None)
            self._thread.join(3 * TXN_TIMEOUT_S)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._producer = None

    # -- the interface -------------------------------------------------------------------------

    async def record(self, entry: AuditEntry) -> None:
        """Return once ``entry`` is committed as the next link of the chain; AuditUnavailable otherwise."""
        if not self._started or self._closed:
            raise AuditUnavailable("the audit log is not running")
        if self._fenced is not None:
            raise AuditUnavailable(self._fenced)
        pending = _Pending(entry, audit_time())
        self._queue.put(pending)
        waiting = asyncio.wrap_future(pending.outcome)
        # An outcome that arrives after we stopped waiting is retrieved here, not logged as lost.
        waiting.add_done_callback(lambda done: done.cancelled() or done.exception())
        finished, _ = await asyncio.wait({waiting}, timeout=self.timeout_s)
        if not finished and pending.outcome.cancel():
            raise AuditUnavailable(f"the audit log did not take the record within {self.timeout_s:g}s")
        if not finished:
            raise AuditUnavailable(f"the audit record was not confirmed within {self.timeout_s:g}s")
        pending.outcome.result()

    def committed(self) -> Mapping[int, int]:
        """Partition → offset of the last record this log committed (empty before its first)."""
        return self._committed

    @property
    def last(self) -> Tail | None:
        """This writer's last committed record as far as this log knows."""
        return self._tail

    # -- the sender thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            taken = [first]
            while len(taken) < MAX_ROUND_RECORDS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                taken.append(more)
            # An entry whose caller stopped waiting is left out: it is never written.
            live = [p for p in taken if p.outcome.set_running_or_notify_cancel()]
            if live:
                self._round(live)

    def _round(self, pending: list[_Pending]) -> None:
        if self._fenced is not None:
            self._fail(pending, AuditUnavailable(self._fenced))
            return
        try:
            tail = self._commit(pending)
        except Exception as exc:  # a round must answer its callers whatever happened
            reason = _reason(exc)
            aborted = self._abandon()
            if _fenced(exc) or self._fenced_seen or (aborted is not None and aborted.code() in FENCED):
                self._fenced = (
                    f"the audit writer id {self.writer!r} is in use by another gateway instance, which "
                    "fenced this one; give each gateway its own GOVBUS_AUDIT_WRITER"
                )
                log.error("audit.log.fenced", writer=self.writer, topic=self.topic)
            log.warning("audit.round.failed", writer=self.writer, records=len(pending), error=reason)
            self._fail(pending, AuditUnavailable(f"the audit record could not be written: {reason}"))
            return
        self._tail = tail
        self._committed = {**self._committed, tail.partition: tail.offset}
        self.rounds += 1
        for item in pending:
            item.outcome.set_result(None)

    def _commit(self, pending: list[_Pending]) -> Tail:
        producer = self._ready()
        tail = self._tail
        seq, prev = (tail.seq, tail.hash) if tail is not None else (0, GENESIS)
        producer.begin_transaction()
        self._failures, self._offsets = [], {}
        for item in pending:
            seq += 1
            record = chained(item.entry, item.time, self.writer, seq, prev)
            prev = record["hash"]
            self._produce(producer, orjson.dumps(record))
        remaining = producer.flush(TXN_TIMEOUT_S)
        if remaining:
            raise _RoundFailedError(f"Kafka did not acknowledge {remaining} records in {TXN_TIMEOUT_S:g}s")
        if self._failures:
            raise _RoundFailedError(self._failures[0])
        if len(self._offsets) != 1:
            raise _RoundFailedError(f"the records landed in {len(self._offsets)} partitions, not one")
        producer.commit_transaction(TXN_TIMEOUT_S)
        ((partition, offset),) = self._offsets.items()
        return Tail(seq, prev, partition, offset)

    def _produce(self, producer: Producer, value: bytes) -> None:
        while True:
            try:
                producer.produce(self.topic, value=value, key=self._key, on_delivery=self._report)
                return
            except BufferError:
                producer.poll(0.05)

    def _report(self, error: KafkaError | None, message: Message) -> None:
        failure = delivery_failure(error, message)
        if error is not None and error.code() in FENCED:
            self._fenced_seen = True
        if failure is not None:
            self._failures.append(failure)
            return
        partition, offset = message.partition(), message.offset()
        if partition is not None and offset is not None:
            self._offsets[partition] = max(offset, self._offsets.get(partition, -1))

    def _ready(self) -> Producer:
        """The producer, started (fencing zombies), and the chain's end, read from the topic when unknown."""
        producer = self._producer
        if producer is None:
            config: dict[str, Any] = self._connection.producer(**{"compression.type": self._compression})
            config["transactional.id"] = self.transactional_id
            # An open transaction of a writer that died holds back every read_committed reader (the
            # trail, verify) until it times out: keep that short.
            config["transaction.timeout.ms"] = 10_000
            config["retry.backoff.ms"] = 5
            producer = Producer(config)
            producer.init_transactions(TXN_TIMEOUT_S)
            self._producer = producer
            self._tail_known = False
        if not self._tail_known:
            consumer = self._consumer
            if consumer is None:
                raise _RoundFailedError("the audit log is closed")
            try:
                self._tail = find_tail(consumer, self.topic, self.writer)
            except GovbusError as exc:
                raise _RoundFailedError(f"could not find where the chain ends: {exc}") from exc
            self._tail_known = True
        return producer

    def _abandon(self) -> KafkaError | None:
        """Abort the round's transaction (if any) and drop the producer; the chain's end is read again.

        Returns the abort's error, if it failed (a fenced producer says so there)."""
        producer, self._producer = self._producer, None
        self._tail_known = False
        if producer is None:
            return None
        try:
            producer.abort_transaction(TXN_TIMEOUT_S)
        except KafkaException as exc:
            return exc.args[0] if isinstance(exc.args[0], KafkaError) else None
        return None

    @staticmethod
    def _fail(pending: list[_Pending], error: AuditUnavailable) -> None:
        for item in pending:
            item.outcome.set_exception(error)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and isinstance(exc.args[0], KafkaError):
        return str(exc.args[0].str())
    return str(exc) or type(exc).__name__


def _fenced(exc: BaseException) -> bool:
    return (
        isinstance(exc, KafkaException)
        and isinstance(exc.args[0], KafkaError)
        and exc.args[0].code() in FENCED
    )
