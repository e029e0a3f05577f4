"""Sending batches of prepared events all-or-nothing: each batch is committed in a Kafka transaction.

:class:`AtomicSender` owns one transactional producer and one sender thread. A caller hands it a batch
(events checked and encoded by :meth:`~producers.publisher.Publisher.prepare`) and waits; the thread
starts a transaction, produces every batch waiting at that moment (group commit: many small requests
share one transaction, so throughput does not hang on one commit per request), waits for every delivery
report, and commits. Read-committed consumers (every govbus consumer) see all of a batch or none of it.

The outcome a caller gets:

- ``None``: committed; every event of the batch is in the log.
- :class:`~bus.errors.PublishError`: nothing of the batch is visible (the transaction was aborted, or
  never began because Kafka did not answer).
- :class:`OutcomeUnknownError`: the commit was sent but not confirmed in time; the batch may or may not
  be visible. Sending it again with the same event ids is safe: consumers drop copies by event id.

Any failed round closes the producer; the next round starts a new one with the same ``transactional.id``,
whose ``init_transactions`` aborts whatever the old one left open.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from bus.delivery import delivery_failure
from bus.errors import PublishError
from bus.kafka_config import KafkaConnection
from producers.publisher import PreparedEvent

log = structlog.get_logger(__name__)
TXN_TIMEOUT_S = 10.0
"""How long a begin, a flush or a commit may wait for Kafka."""
MAX_ROUND_EVENTS = 5000
"""Events of one transaction at most (batches are never split between transactions)."""
SEND_TIMEOUT_S = 3 * TXN_TIMEOUT_S
"""How long a caller waits for its batch's round: a begin, a flush and a commit."""


class OutcomeUnknownError(PublishError):
    """A commit was sent but not confirmed: the batch may be in the log; resend it with the same ids."""


@dataclass
class _Batch:
    events: Sequence[PreparedEvent]
    outcome: Future[None] = field(default_factory=Future)


class AtomicSender:
    """Commits batches of prepared events in Kafka transactions, several waiting batches per transaction."""

    def __init__(self, connection: KafkaConnection, transactional_id: str) -> None:
        self._connection = connection
        self.transactional_id = transactional_id
        self._waiting: queue.Queue[_Batch | None] = queue.Queue()
        self._producer: Producer | None = None
        self._thread = threading.Thread(target=self._run, name=f"atomic {transactional_id}", daemon=True)
        self._started = False
        self._start_lock = threading.Lock()
        self._failures: list[str] = []

    def send(self, events: Sequence[PreparedEvent], timeout_s: float = SEND_TIMEOUT_S) -> None:
        """Commit ``events`` all-or-nothing; PublishError (or OutcomeUnknownError) when not committed."""
        if not events:
            return
        outcome = self.submit(events)
        try:
            outcome.result(timeout_s)
        except TimeoutError:
            give_up(outcome, timeout_s)
            outcome.result()

    def submit(self, events: Sequence[PreparedEvent]) -> Future[None]:
        """Queue ``events`` for the next round without waiting: the future is done once the round
        ended (its exception a PublishError or OutcomeUnknownError when not committed). For callers
        that wait their own way (the publish API awaits it on its event loop); see :func:`give_up`."""
        with self._start_lock:
            if not self._started:
                self._thread.start()
                self._started = True
        batch = _Batch(events)
        self._waiting.put(batch)
        return batch.outcome

    def close(self) -> None:
        """Finish the rounds under way and stop the sender thread."""
        if self._started:
            self._waiting.put(None)
            self._thread.join(4 * TXN_TIMEOUT_S)

    # -- the sender thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            batches = [first]
            count = len(first.events)
            while count < MAX_ROUND_EVENTS:
                try:
                    more = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._waiting.put(None)
                    break
                batches.append(more)
                count += len(more.events)
            # A batch whose caller stopped waiting (cancelled) is left out: it is never sent.
            live = [b for b in batches if b.outcome.set_running_or_notify_cancel()]
            if live:
                self._round(live)

    def _round(self, batches: list[_Batch]) -> None:
        try:
            self._commit(batches)
        except OutcomeUnknownError as exc:
            self._fail(batches, exc)
        except PublishError as exc:
            self._abort()
            self._fail(batches, exc)
        except Exception as exc:  # a round must answer its callers whatever happened
            log.exception("atomic.round.failed", transactional_id=self.transactional_id)
            self._abort()
            self._fail(batches, PublishError(f"not published: {type(exc).__name__}: {exc}"))
        else:
            for batch in batches:
                batch.outcome.set_result(None)

    def _commit(self, batches: list[_Batch]) -> None:
        producer = self._ready_producer()
        _kafka("begin the transaction", producer.begin_transaction)
        self._failures = []
        for batch in batches:
            for event in batch.events:
                self._produce(producer, event)
        remaining = producer.flush(TXN_TIMEOUT_S)
        if remaining:
            raise PublishError(
                f"not published: Kafka did not acknowledge {remaining} events in {TXN_TIMEOUT_S:g}s"
            )
        if self._failures:
            raise PublishError(f"not published: {self._failures[0]}")
        try:
            producer.commit_transaction(TXN_TIMEOUT_S)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.txn_requires_abort():
                raise PublishError(f"not published: the commit failed: {error.str()}") from exc
            # Retriable or fatal after the commit was sent: whether it took effect is not known.
            self._drop_producer()
            raise OutcomeUnknownError(
                f"the commit was not confirmed ({error.str()}): the events may be published"
            ) from exc

    def _produce(self, producer: Producer, event: PreparedEvent) -> None:
        while True:
            try:
                producer.produce(
                    event.topic,
                    value=event.value,
                    key=event.key,
                    headers=event.headers,
                    on_delivery=self._report,
                )
                return
            except BufferError:
                producer.poll(0.05)
            except KafkaException as exc:
                raise PublishError(f"not published: {event.topic}: {exc.args[0].str()}") from exc

    def _report(self, err: KafkaError | None, message: Message) -> None:
        failure = delivery_failure(err, message)
        if failure is not None:
            self._failures.append(f"{message.topic()}: {failure}")

    def _ready_producer(self) -> Producer:
        if self._producer is not None:
            return self._producer
        config = self._connection.producer()
        config["transactional.id"] = self.transactional_id
        config["transaction.timeout.ms"] = 60_000
        # A transaction begun right after a commit meets CONCURRENT_TRANSACTIONS until the broker has
        # written the last one's markers; librdkafka waits retry.backoff.ms (100 ms) before asking again,
        # which would cap a sender at about ten transactions a second (KAFKA-5477 lowered Java's to 20 ms).
        config["retry.backoff.ms"] = 5
        # Only failed deliveries call back into Python (a callback per event was a tenth of the gateway's
        # CPU per batch). A success needs no report of its own: the commit succeeds only if every
        # message of the transaction was delivered (librdkafka fails it, abortably, otherwise).
        config["delivery.report.only.error"] = True
        producer = Producer(config)
        _kafka("start a transactional producer", lambda: producer.init_transactions(TXN_TIMEOUT_S))
        self._producer = producer
        return producer

    def _abort(self) -> None:
        """Abort the round's transaction and drop the producer either way.

        A producer that failed a round may keep a broken state past its abort: after a record the
        broker refused, the next transaction's records failed on skipped sequence numbers (found by
        ``tests/integration/test_atomic_sender.py``). The next round's new producer starts clean, and
        its ``init_transactions`` aborts whatever this abort could not.
        """
        producer = self._producer
        if producer is None:
            return
        self._drop_producer()
        with contextlib.suppress(KafkaException):
            producer.abort_transaction(TXN_TIMEOUT_S)

    def _drop_producer(self) -> None:
        self._producer = None

    def _fail(self, batches: list[_Batch], error: PublishError) -> None:
        log.warning("atomic.round.not_committed", batches=len(batches), error=str(error))
        for batch in batches:
            batch.outcome.set_exception(error)


def give_up(outcome: Future[None], waited_s: float) -> None:
    """Stop waiting for a batch after ``waited_s``: PublishError if it was still waiting for its round
    (cancelled now, it is never sent), OutcomeUnknownError if a round has it; returns only when it
    ended meanwhile (``outcome.result()`` then holds its answer)."""
    if outcome.cancel():
        raise PublishError(f"not published: Kafka did not take the batch within {waited_s:g}s")
    if not outcome.done():
        raise OutcomeUnknownError(f"no commit confirmed within {waited_s:g}s")


def _kafka(what: str, call: Callable[[], object]) -> None:
    """Run a transactional call; PublishError saying what could not be done (nothing was published)."""
    started = time.monotonic()
    try:
        call()
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        raise PublishError(
            f"not published: could not {what} within {time.monotonic() - started:.0f}s: {error.str()}"
        ) from exc
