"""The gateway's audit log on Kafka: every audited request becomes a link of this instance's hash chain.

:class:`KafkaAuditLog` writes :mod:`~gateway.audit.chain` records to the audit topic
(:mod:`~gateway.audit.topic`), keyed by the writer id. Decisions:

- **Pipelined, not transactional.** :meth:`KafkaAuditLog.record` (called on the event loop) chains the
  entry onto the last one and hands it to an idempotent ``acks=all`` producer at once, then awaits its
  delivery report: many records are in flight together and each caller waits one acknowledgement
  (a few milliseconds), not a transaction's commit. A transaction per group of records cost about 15 ms
  of latency on this machine, which capped a gateway with 16 concurrent readers at about 1,000 audited
  reads/s; the acknowledgement of an idempotent producer is as durable (every in-sync replica has it).
- **The chain never forks and never has holes.** Records are chained and produced under one lock, so the
  produce order is the chain order; the idempotent producer keeps that order in the partition, and with
  ``enable.gapless.guarantee`` any failure that could leave a gap stops the producer instead. After any
  failed delivery the log stops taking records, waits for what is in flight, drops the producer, reads
  where its chain really ends in the topic, and continues from there with a new producer: a record whose
  outcome was unknown is never chained over. Callers of failed records get
  :class:`~gateway.audit.entry.AuditUnavailable`. ``message.timeout.ms`` is 30 s, longer than any caller
  waits, so a record is not given up by the client while a later one could still land.
- **Every record must have an offset.** A delivery report without one (see :mod:`bus.delivery`) counts as
  a failure.
- **One writer id, one live writer.** Two live writers with one id would fork its chain (``govbus audit
  verify`` names the fork). The default writer id is ``gateway-<hostname>-<pid>``, unique among live
  processes of a host; a configured one (``GOVBUS_AUDIT_WRITER``) must be unique per live gateway. A
  writer continues the chain of its id where the topic says it ends (a restart with a configured id, or
  a reused pid).
- **Acknowledgements are served on the event loop.** While blocks are in flight, the loop that sent them
  polls the producer once per pass (a non-blocking call of about a microsecond) and settles the callers
  there; after :data:`LOOP_POLLS` passes without a report it hands the waiting to the log's thread,
  which blocks in the producer's poll. Settling from a thread costs a wake-up of the loop and, worse,
  hands the interpreter lock back and forth: measured with ``govbus bench gateway``, a gateway whose
  acknowledgements arrived through the thread spent about 60 µs more of its loop's time per audited read.
- **Bounded wait.** A caller waits at most ``timeout_s`` (5 s); a record may then exist for a request that
  was answered 503, never the reverse.
- **Where it starts.** On start the log creates the topic if needed and finds its writer's last record
  (reading backwards from the topic's end), and continues that chain.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from bus.delivery import delivery_failure
from bus.errors import ConfigurationError, GovbusError
from bus.kafka_config import KafkaConnection
from gateway.audit.chain import GENESIS, audit_time, link
from gateway.audit.entry import AuditEntry, AuditUnavailable
from gateway.audit.topic import Tail, ensure_audit_topic, find_tail, reader

log = structlog.get_logger(__name__)
AUDIT_TIMEOUT_S = 5.0
"""How long :meth:`KafkaAuditLog.record` waits for its record's acknowledgement."""
RECOVERY_TIMEOUT_S = 10.0
"""How long a recovery may wait for the records in flight and for the chain's end."""
MESSAGE_TIMEOUT_MS = 30_000
MAX_BLOCK_RECORDS = 500
"""Audit records in one Kafka record at most (a block of 500 is about 250 KB)."""
LOOP_POLLS = 200
"""Passes of the event loop that poll for acknowledgements in a row without one before the log's thread
takes the waiting over (a pass of an idle loop is a few microseconds)."""
WRITER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def default_writer_id() -> str:
    """``gateway-<hostname>-<pid>`` (characters a writer id may not hold replaced by ``-``)."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()) or "localhost"
    return f"gateway-{host[:80]}-{os.getpid()}"


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
class _Block:
    """Records chained at one moment of one event loop, sent as one Kafka record, answered together."""

    loop: asyncio.AbstractEventLoop
    outcome: asyncio.Future[None]
    records: list[bytes] = field(default_factory=list)
    seq: int = 0
    hash: str = ""
    timer: asyncio.TimerHandle | None = None
    first_prev: str = ""
    """The ``prev`` of the block's first record: where the chain stands if the block is never sent."""


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
        self.timeout_s = timeout_s
        self._connection = connection
        self._compression = compression
        self._key = self.writer.encode()
        self._lock = threading.Lock()
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._tail: Tail | None = None
        self._seq = 0
        self._prev = GENESIS
        self._committed: dict[int, int] = {}
        self._broken: str | None = None
        self._recovering = threading.Event()
        self._wake = threading.Event()
        """Set when the log's thread has work: reports to serve that no loop serves, or a recovery."""
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name=f"audit {self.writer}", daemon=True)
        self._started = False
        self._closed = False
        self._settled: collections.deque[tuple[_Block, AuditUnavailable | None]] = collections.deque()
        self._last_loop_poll = 0.0
        self._loop_polling: asyncio.AbstractEventLoop | None = None
        """The loop serving delivery reports (None: the log's thread serves them)."""
        self._idle_polls = 0
        self._block: _Block | None = None
        self._in_flight: dict[int, _Block] = {}
        self._late = AuditUnavailable(f"the audit record was not acknowledged within {timeout_s:g}s")
        self.recoveries = 0
        """How many times the log started over after a failed delivery."""

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Create the topic if needed, find the chain's end and start the producer and its poller.
        ConfigurationError or KafkaUnavailableError when Kafka does not answer."""
        ensure_audit_topic(self._connection, self.topic)
        self._consumer = reader(self._connection)
        try:
            self._restart()
        except (KafkaException, GovbusError) as exc:
            raise ConfigurationError(f"the audit log could not start on {self.topic!r}: {exc}") from exc
        self._started = True
        self._poller.start()
        log.info("audit.log.started", topic=self.topic, writer=self.writer, seq=self._seq)

    def close(self) -> None:
        """Deliver what is in flight (bounded), stop the poller and release the Kafka clients."""
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._started:
            self._poller.join(RECOVERY_TIMEOUT_S)
        producer = self._producer
        if producer is not None:
            self._serve(producer, self.timeout_s, flush=True)
        if self._started:
            self._poller.join(RECOVERY_TIMEOUT_S)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._producer = None

    # -- the interface -------------------------------------------------------------------------

    async def record(self, entry: AuditEntry) -> None:
        """Return once ``entry`` is acknowledged as the next link of the chain; AuditUnavailable otherwise."""
        if not self._started or self._closed:
            raise AuditUnavailable("the audit log is not running")
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._broken is not None or self._producer is None:
                raise AuditUnavailable(f"the audit log is recovering from a failure: {self._broken}")
            block = self._block
            if block is not None and (block.loop is not loop or len(block.records) >= MAX_BLOCK_RECORDS):
                self._send(block)
                block = None
            if block is None:
                block = self._block = _Block(loop, loop.create_future(), first_prev=self._prev)
                block.timer = loop.call_later(self.timeout_s, _settle, block.outcome, self._late)
                # Sent once the requests ready now have added theirs: one Kafka record for them all.
                loop.call_soon(self._close_block, block)
            seq = self._seq + 1
            stored, digest = link(entry, audit_time(), self.writer, seq, self._prev)
            block.records.append(stored)
            block.seq, block.hash = seq, digest
            self._seq, self._prev = seq, digest
        # Shielded: a caller that goes away (a client disconnecting) must not cancel its block-mates' wait.
        await asyncio.shield(block.outcome)

    def _close_block(self, block: _Block) -> None:
        with self._lock:
            if self._block is block:
                self._send(block)

    def _send(self, block: _Block) -> None:
        """Produce ``block`` (under the lock: the produce order is the chain order)."""
        self._block = None
        value = b"[" + b",".join(block.records) + b"]"
        producer = self._producer
        try:
            if producer is None:
                raise KafkaException(KafkaError(KafkaError._STATE, "the audit log is recovering"))
            producer.produce(self.topic, value=value, key=self._key, on_delivery=partial(self._report, block))
            self._in_flight[id(block)] = block
            self._idle_polls = 0
            if self._loop_polling is not block.loop:
                self._loop_polling = block.loop
                block.loop.call_soon(self._poll_on_loop, block.loop, producer)
        except (BufferError, KafkaException) as exc:
            # Never sent, so nothing of it can be in the log: the chain goes on from before it.
            self._seq, self._prev = block.seq - len(block.records), block.first_prev
            _settle(block.outcome, AuditUnavailable(f"the audit records could not be queued: {exc}"))
            if block.timer is not None:
                block.timer.cancel()

    def committed(self) -> Mapping[int, int]:
        """Partition → offset of the last record this log had acknowledged (empty before its first)."""
        return self._committed

    @property
    def last(self) -> Tail | None:
        """This writer's last acknowledged record as far as this log knows."""
        return self._tail

    # -- delivery reports and recovery ----------------------------------------------------------

    def _report(self, block: _Block, error: KafkaError | None, message: Message) -> None:
        with self._lock:
            self._in_flight.pop(id(block), None)
        failure = delivery_failure(error, message)
        partition, offset = message.partition(), message.offset()
        if failure is None and (partition is None or offset is None or offset < 0):
            failure = "the broker did not report the record's offset"
        if failure is not None or partition is None or offset is None:
            with self._lock:
                if self._broken is None:
                    self._broken = failure
                    log.warning("audit.delivery.failed", writer=self.writer, seq=block.seq, error=failure)
            self._recovering.set()
            self._wake.set()
            self._settled.append(
                (block, AuditUnavailable(f"the audit record could not be written: {failure}"))
            )
            return
        with self._lock:  # the loop and the log's thread may both be serving reports
            if self._tail is None or block.seq > self._tail.seq:
                self._tail = Tail(block.seq, block.hash, partition, offset)
                self._committed = {**self._committed, partition: offset}
        self._settled.append((block, None))

    def _poll_on_loop(self, loop: asyncio.AbstractEventLoop, producer: Producer) -> None:
        """Serve delivery reports on ``loop`` once per pass while blocks are in flight (see the module)."""
        if self._producer is not producer or self._recovering.is_set() or self._closed:
            self._loop_polling = None  # the thread serves the rest
            self._wake.set()
            return
        self._last_loop_poll = time.monotonic()
        try:
            served = producer.poll(0)
        except KafkaException as exc:
            self._fail_producer(exc)
            self._loop_polling = None
            self._wake.set()
            return
        self._dispatch(loop)
        self._idle_polls = 0 if served else self._idle_polls + 1
        if self._in_flight and self._idle_polls < LOOP_POLLS:
            loop.call_soon(self._poll_on_loop, loop, producer)
            return
        self._loop_polling = None
        if self._in_flight:
            self._wake.set()

    def _dispatch(self, current: asyncio.AbstractEventLoop | None = None) -> None:
        """Hand the outcomes of the reports just served to their event loops: directly on ``current`` (the
        loop running this call), with one wake-up for each other loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Block, AuditUnavailable | None]]] = {}
        while True:
            try:
                block, error = self._settled.popleft()
            except IndexError:
                break
            by_loop.setdefault(block.loop, []).append((block, error))
        for loop, outcomes in by_loop.items():
            if loop is current:
                _settle_all(outcomes)
                continue
            try:
                loop.call_soon_threadsafe(_settle_all, outcomes)
            except RuntimeError:  # that loop is closed: nobody waits any more
                continue

    def _serve(self, producer: Producer, timeout_s: float, *, flush: bool = False) -> None:
        """Serve delivery reports (all of them when ``flush``); a fatal producer error breaks the log."""
        try:
            if flush:
                producer.flush(timeout_s)
            else:
                producer.poll(timeout_s)
        except KafkaException as exc:
            self._fail_producer(exc)
        self._dispatch()

    def _fail_producer(self, exc: KafkaException) -> None:
        reason = _reason(exc)
        with self._lock:
            if self._broken is None:
                self._broken = reason
                log.warning("audit.producer.failed", writer=self.writer, error=reason)
        self._recovering.set()
        self._wake.set()

    def _poll(self) -> None:
        while not self._stop.is_set():
            producer = self._producer
            # A loop that stopped polling without saying so (it was closed) is taken over after 0.1 s.
            unserved = self._loop_polling is None or time.monotonic() - self._last_loop_poll > 0.1
            if producer is not None and self._in_flight and unserved:
                self._serve(producer, 0.05)
            else:
                self._wake.wait(0.05)
                self._wake.clear()
            if self._recovering.is_set() and not self._closed:
                self._recover()

    def _recover(self) -> None:
        """Wait for what is in flight, then start over from where the chain really ends."""
        producer = self._producer
        if producer is not None:
            self._serve(producer, RECOVERY_TIMEOUT_S, flush=True)
        with self._lock:
            lost, self._in_flight = list(self._in_flight.values()), {}
        failure = AuditUnavailable(f"the audit record could not be written: {self._broken}")
        self._settled.extend((block, failure) for block in lost)
        self._dispatch()
        try:
            self._restart()
        except (KafkaException, GovbusError) as exc:
            log.warning("audit.recovery.failed", writer=self.writer, error=str(exc))
            self._stop.wait(1.0)  # Kafka is still away: try again shortly, refusing records meanwhile
            return
        self.recoveries += 1
        log.info("audit.log.recovered", writer=self.writer, seq=self._seq)

    def _restart(self) -> None:
        """A new producer, and the chain's end read from the topic; then records are taken again."""
        config: dict[str, Any] = self._connection.producer()
        config.update(
            {
                "compression.type": self._compression,
                "linger.ms": 0,
                "socket.nagle.disable": True,
                "enable.gapless.guarantee": True,
                "message.timeout.ms": MESSAGE_TIMEOUT_MS,
            }
        )
        producer = Producer(config)
        consumer = self._consumer
        if consumer is None:
            raise GovbusError("the audit log is closed")
        tail = find_tail(consumer, self.topic, self.writer)
        with self._lock:
            self._producer = producer
            self._tail = tail
            self._seq, self._prev = (tail.seq, tail.hash) if tail is not None else (0, GENESIS)
            self._broken = None
            self._recovering.clear()


def _settle_all(outcomes: list[tuple[_Block, AuditUnavailable | None]]) -> None:
    for block, error in outcomes:
        if block.timer is not None:
            block.timer.cancel()
        _settle(block.outcome, error)


def _settle(outcome: asyncio.Future[None], error: AuditUnavailable | None) -> None:
    if outcome.done():
        return
    if error is None:
        outcome.set_result(None)
    else:
        outcome.set_exception(error)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return str(exc.args[0].str())
    return str(exc) or type(exc).__name__
