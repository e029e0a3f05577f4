"""The reaction runtime: another agency's events in, our own out, exactly once, by Kafka transactions.

Each batch is one transaction of a transactional producer: the events the batch's records call for,
the dead letters of records that cannot be decoded, and the consumer's positions
(``send_offsets_to_transaction``) commit together or not at all. A crash anywhere before the commit
leaves nothing visible to ``read_committed`` readers and the positions where they were, so the batch
is consumed again and decided again; a crash after it leaves the positions past the batch. Either
way each death suspends each benefit once. Emitted events also carry deterministic ids
(:func:`~consumers.reactions.core.reaction_id`), so even a copy made outside this protocol is dropped
by a consumer that deduplicates by ``ce_id``.

Decisions worth knowing:

- **One process per reaction, reading every partition.** The state joins topics keyed differently (deaths by
  resident id, benefits by benefit id), so a resident's death and their benefits sit in unrelated partitions
  and a group could not split them between processes. The adapter assigns itself all partitions of its input
  topics (no group membership; the group id only names where its offsets are committed). Its
  ``transactional.id`` is ``{prefix}govbus.{name}``: a second process of the same reaction fences the first
  (``init_transactions``), which then stops with an error, so two never emit side by side. Partitions added to
  a topic later are read after a restart.
- **State rebuilt from the log on start.** ``init_transactions`` first aborts whatever transaction a crashed
  predecessor left open; then the adapter reads its input topics from the beginning up to the group's
  committed offsets, folding every record into the state without emitting, and only then consumes from the
  committed offsets, emitting. The log stays the only source of truth, there is no snapshot to keep
  exactly-once in step with the offsets, and the rebuilt state is exactly the one the last committed
  transaction was decided on. The cost: a start reads the whole history of the input topics (records of types
  the reaction ignores, such as payments, are passed over on their ``ce_type`` header without decoding), and
  the state (one small record per benefit or civil servant and per death) stays in memory. Measured on the
  2-core test machine: after 100,000 simulated localgov.resident and finance.benefit records (4,000 of them
  deaths, grants and suspensions), a restart of finance-reactions emitted again after 3.6 s, its first run
  having taken 8 s. Events this reaction emitted after the committed position of its own topic are folded in
  when the emitting phase reads them; no decision depends on them before that, because a death already known
  decides nothing again.
- **Lag.** A ``read_committed`` consumer steps over transaction markers and aborted records without returning
  them, so no batch would carry their offsets; when a poll returns nothing and positions have moved, an
  offsets-only transaction commits them, and the group's lag reaches zero.
- **Errors.** A transactional call that fails with a retriable error is called again (up to
  :data:`MAX_ATTEMPTS` times); an error that requires an abort (``txn_requires_abort``, e.g. a delivery that
  failed) aborts the transaction and the adapter starts over as after a restart: state discarded, rebuilt up
  to the committed offsets, consumption resumed from them. More than :data:`MAX_ABORTS_IN_A_ROW` aborts
  without a commit between them, a fatal error (``fatal``, e.g. fenced by another process) or any other error
  stops the adapter with :class:`~bus.errors.PublishError`. An exception from the decision code is a bug: the
  open transaction is aborted and the adapter stops, nothing of the batch recorded.
- **Order across topics.** Within a batch, records are taken in Kafka timestamp order across partitions (each
  partition's own order kept), so a death and a decision the agency published about the same moment are seen
  in the order they were published. Across batches the topics are read side by side: a suspension finance
  published just before a death but read after it (its topic lagging) leaves the benefit suspended twice, the
  second time for the death (the benefits read model, ``consumers.projections.finance``, keeps the first).
  Otherwise the order in which the topics are read changes nothing: a grant read after the death is suspended
  with the same event id as one read before it.
- **Until caught up.** ``run(stop, until_caught_up=True)`` (``govbus consume --until-caught-up``) returns once
  the committed position of every input partition has reached its end offset, asked of the broker when a
  poll returns nothing and no moved position is left to commit: the group's lag (``govbus lag``) is then
  zero. The events it emitted on its own agency's topic are input too, so it returns only after reading
  them back.
- **Bad input** (a record that cannot be decoded, or lacks its CloudEvents headers) goes to ``{name}.dlq``
  inside the same transaction, with its key, value and headers and ``govbus_dlq_*`` headers naming its origin
  and cause. The input topics and the DLQ topic must exist before the adapter starts.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from bus.errors import ConfigurationError, PublishError, SchemaNotFoundError, SerializationError
from bus.kafka_config import KafkaConnection, missing_topics
from consumers.decoder import EventDecoder
from consumers.dlq import dlq_topic
from consumers.reactions.core import ReactionRules, react
from consumers.reactions.output import ReactionOutput
from schemas.catalog import Catalog
from schemas.registry_client import RegistryClient

log = structlog.get_logger(__name__)

S = TypeVar("S")
Place = tuple[str, int]
BeforeCommit = Callable[[int], None]
"""Called with the number of records a transaction holds, after they were produced, before the commit."""

BAD_INPUT = (SerializationError, SchemaNotFoundError)
# After a refused record librdkafka may fail the next transaction too ("skipped sequence numbers")
# before it has resynchronised the partition's sequence numbers: one abort in a row is not enough.
MAX_ABORTS_IN_A_ROW = 5
MAX_ATTEMPTS = 10
TXN_TIMEOUT_S = 60.0
RETRY_PAUSE_S = 0.5
REBUILD_BATCH = 1000


@dataclass
class ReactionStats:
    """Counters a reaction adapter exposes for progress and tests."""

    rebuilt: int = 0
    """Records folded into the state while rebuilding (all rebuilds since the start)."""
    emitted: int = 0
    """Events published in committed transactions."""
    dead_lettered: int = 0
    """Dead letters published in committed transactions."""
    transactions: int = 0
    """Transactions committed."""
    aborted: int = 0
    """Transactions aborted after an abortable error."""
    positions: dict[Place, int] = field(default_factory=dict)
    """The next offset to read per partition, as of the last commit."""


class _AbortRequiredError(Exception):
    """A transactional call failed in a way that requires aborting the transaction."""


class ReactionAdapter(Generic[S]):
    """Runs one agency's reaction (:class:`~consumers.reactions.core.ReactionRules`) against Kafka."""

    def __init__(
        self,
        connection: KafkaConnection,
        registry: RegistryClient,
        catalog: Catalog,
        rules: ReactionRules[S],
        topic_prefix: str = "",
        batch_size: int = 500,
        before_commit: BeforeCommit | None = None,
    ) -> None:
        self.rules = rules
        self.name = rules.name
        self.topics = [topic_prefix + topic for topic in rules.topics]
        self.dlq = topic_prefix + dlq_topic(rules.name)
        self.group_id = group_id(rules.name, topic_prefix)
        self.transactional_id = self.group_id
        self.stats = ReactionStats()
        self.ready = threading.Event()
        """Set once the state is rebuilt and the adapter consumes and emits."""
        self._connection = connection
        self._output = ReactionOutput(rules.name, rules.agency, registry, catalog, topic_prefix, self.dlq)
        self._decoder = EventDecoder(registry, catalog)
        self._batch_size = batch_size
        self._before_commit = before_commit
        self._aborts_in_a_row = 0

    def run(self, stop: threading.Event, *, until_caught_up: bool = False) -> ReactionStats:
        """Rebuild the state, then consume and emit until ``stop`` is set; returns the counters.

        With ``until_caught_up`` it also returns once every input partition's committed position is at
        the partition's end.
        """
        self._output.resolve(self.rules.emits)
        producer = Producer(self._connection.producer(**{"transactional.id": self.transactional_id}))
        self._call("init_transactions", lambda: producer.init_transactions(TXN_TIMEOUT_S))
        log.info("reaction.started", adapter=self.name, topics=self.topics)
        try:
            while not stop.is_set():
                state = self.rules.new_state()
                start = self._rebuild(state, stop)
                if start is None:
                    break
                try:
                    if self._emit(state, producer, start, stop, until_caught_up):
                        break
                except _AbortRequiredError as exc:
                    self._aborted(producer, exc)
        finally:
            self.ready.clear()
            log.info("reaction.stopped", adapter=self.name, emitted=self.stats.emitted)
        return self.stats

    # -- start: rebuild the state up to the committed offsets ------------------------------------

    def _rebuild(self, state: S, stop: threading.Event) -> dict[Place, int] | None:
        """Fold the input up to the committed offsets into ``state``; return where to resume (None: stop)."""
        consumer = Consumer(self._connection.consumer(self.group_id, **{"enable.partition.eof": True}))
        try:
            committed = self._committed(consumer)
            targets = {place: offset for place, offset in committed.items() if offset > 0}
            if targets:
                consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in targets])
            pending = set(targets)
            while pending:
                if stop.is_set():
                    return None
                for message in consumer.consume(REBUILD_BATCH, timeout=0.5):
                    place = (str(message.topic()), int(message.partition() or 0))
                    if place not in pending:
                        continue
                    error = message.error()
                    offset = int(message.offset() or 0)
                    if error is None and offset < targets[place]:
                        self._fold(state, message)
                        continue
                    if error is not None and error.code() != KafkaError._PARTITION_EOF:
                        log.warning("reaction.rebuild.error", adapter=self.name, error=str(error))
                        continue
                    # The first record at the committed offset, or the end of the partition: every
                    # record before the committed offset has been folded in.
                    pending.discard(place)
                    consumer.pause([TopicPartition(*place)])
        finally:
            consumer.close()
        log.info("reaction.rebuilt", adapter=self.name, records=self.stats.rebuilt)
        return {place: offset if offset >= 0 else OFFSET_BEGINNING for place, offset in committed.items()}

    def _committed(self, consumer: Consumer) -> dict[Place, int]:
        """The group's committed offset of every input partition (negative: none yet)."""
        bootstrap = self._connection.bootstrap_servers
        missing = missing_topics(consumer, [*self.topics, self.dlq], bootstrap, TXN_TIMEOUT_S)
        if missing:
            raise ConfigurationError(
                f"{self.name}: topics {', '.join(missing)} do not exist (`govbus topics create` creates them)"
            )
        metadata = consumer.list_topics(timeout=TXN_TIMEOUT_S)
        partitions = [
            TopicPartition(topic, partition)
            for topic in self.topics
            for partition in sorted(metadata.topics[topic].partitions)
        ]
        try:
            committed = consumer.committed(partitions, timeout=TXN_TIMEOUT_S)
        except KafkaException as exc:
            raise PublishError(f"{self.name}: cannot read the committed offsets: {exc}") from exc
        for tp in committed:
            if tp.error is not None:
                place = f"{tp.topic}[{tp.partition}]"
                raise PublishError(f"{self.name}: no committed offset for {place}: {tp.error}")
        return {(tp.topic, tp.partition): tp.offset for tp in committed}

    def _fold(self, state: S, message: Message) -> None:
        """Fold one record into the state without deciding anything (it was decided before the crash)."""
        kind = _header(message, "ce_type")
        if kind is not None and kind not in self.rules.types:
            return
        try:
            event = self._decoder.decode(message)
        except BAD_INPUT:
            return  # dead-lettered when it was first consumed
        self.rules.evolve(state, event)
        self.stats.rebuilt += 1

    # -- steady state: one transaction per batch -------------------------------------------------

    def _emit(
        self,
        state: S,
        producer: Producer,
        start: dict[Place, int],
        stop: threading.Event,
        until_caught_up: bool,
    ) -> bool:
        """Consume and emit until ``stop`` is set (False) or, with ``until_caught_up``, caught up (True)."""
        consumer = Consumer(self._connection.consumer(self.group_id))
        consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in start.items()])
        self.stats.positions.update({place: offset for place, offset in start.items() if offset >= 0})
        self.ready.set()
        log.info("reaction.emitting", adapter=self.name, partitions=len(start))
        try:
            while not stop.is_set():
                records = []
                for message in consumer.consume(self._batch_size, timeout=0.5):
                    error = message.error()
                    if error is None:
                        records.append(message)
                    else:
                        log.warning("reaction.consume.error", adapter=self.name, error=str(error))
                if records:
                    self._transact(state, producer, consumer, records)
                elif not self._record_moved_positions(state, producer, consumer) and (
                    until_caught_up and self._caught_up(consumer)
                ):
                    log.info("reaction.caught_up", adapter=self.name, emitted=self.stats.emitted)
                    return True
        finally:
            self.ready.clear()
            consumer.close()
        return False

    def _caught_up(self, consumer: Consumer) -> bool:
        """True when the committed position of every assigned partition is at its end offset.

        The end is asked of the broker, not taken from the last fetch answer: that one may predate
        the transaction this adapter just committed to its own agency's topic, which it also reads.
        """
        for tp in consumer.assignment():
            try:
                low, high = consumer.get_watermark_offsets(tp, timeout=TXN_TIMEOUT_S, cached=False)
            except KafkaException as exc:
                log.warning("reaction.watermarks", adapter=self.name, topic=tp.topic, error=str(exc))
                return False
            # A partition with nothing committed yet starts at its low watermark.
            if self.stats.positions.get((tp.topic, tp.partition), low) < high:
                return False
        return True

    def _record_moved_positions(self, state: S, producer: Producer, consumer: Consumer) -> bool:
        """Commit positions that moved without a record to show for it, so the group's lag reaches zero.

        A ``read_committed`` consumer steps over transaction markers and aborted records without
        returning them; when nothing follows them, no batch would ever carry their offsets. Returns
        whether any position moved.
        """
        positions = consumer.position(consumer.assignment())
        moved = [tp for tp in positions if tp.offset > self.stats.positions.get((tp.topic, tp.partition), -1)]
        if moved:
            self._transact(state, producer, consumer, [], moved)
        return bool(moved)

    def _transact(
        self,
        state: S,
        producer: Producer,
        consumer: Consumer,
        records: list[Message],
        positions: list[TopicPartition] | None = None,
    ) -> None:
        """Decide on ``records`` and commit the decided events and the positions in one transaction."""
        self._call("begin_transaction", producer.begin_transaction)
        emitted = dead = 0
        try:
            for message in _in_time_order(records):
                kind = _header(message, "ce_type")
                if kind is not None and kind not in self.rules.types:
                    continue
                try:
                    event = self._decoder.decode(message)
                except BAD_INPUT as exc:
                    self._output.dead_letter(producer, message, exc)
                    dead += 1
                    continue
                for emission in react(self.rules, state, event):
                    self._output.emit(producer, emission)
                    emitted += 1
            if positions is None:
                touched = sorted({(str(m.topic()), int(m.partition() or 0)) for m in records})
                positions = consumer.position([TopicPartition(t, p) for t, p in touched])
            offsets = positions
            group = consumer.consumer_group_metadata()
            self._call(
                "send_offsets_to_transaction",
                lambda: producer.send_offsets_to_transaction(offsets, group, TXN_TIMEOUT_S),
            )
            if self._before_commit is not None:
                self._before_commit(emitted + dead)
            self._call("commit_transaction", lambda: producer.commit_transaction(TXN_TIMEOUT_S))
        except _AbortRequiredError:
            raise
        except BaseException:
            # A bug or a fatal error: leave nothing of the batch behind (a fenced producer cannot abort).
            with suppress(KafkaException):
                producer.abort_transaction(TXN_TIMEOUT_S)
            raise
        self._aborts_in_a_row = 0
        self.stats.transactions += 1
        self.stats.emitted += emitted
        self.stats.dead_lettered += dead
        self.stats.positions.update({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def _aborted(self, producer: Producer, cause: _AbortRequiredError) -> None:
        """Abort the open transaction; the caller then rebuilds from the committed offsets."""
        self._call("abort_transaction", lambda: producer.abort_transaction(TXN_TIMEOUT_S))
        self.stats.aborted += 1
        self._aborts_in_a_row += 1
        log.warning("reaction.aborted", adapter=self.name, cause=str(cause), in_a_row=self._aborts_in_a_row)
        if self._aborts_in_a_row > MAX_ABORTS_IN_A_ROW:
            raise PublishError(f"{self.name}: {self._aborts_in_a_row} transactions aborted in a row: {cause}")

    def _call(self, what: str, call: Callable[[], object]) -> None:
        """Run one transactional call, retrying it while librdkafka says the call may be retried."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                call()
                return
            except KafkaException as exc:
                error = exc.args[0]
                if not isinstance(error, KafkaError):
                    raise PublishError(f"{self.name}: {what} failed: {exc}") from exc
                if error.fatal():
                    raise PublishError(f"{self.name}: {what} failed fatally: {error.str()}") from exc
                if error.txn_requires_abort():
                    raise _AbortRequiredError(f"{what}: {error.str()}") from exc
                if not error.retriable() or attempt == MAX_ATTEMPTS:
                    raise PublishError(f"{self.name}: {what} failed: {error.str()}") from exc
                log.warning(
                    "reaction.retry", adapter=self.name, call=what, attempt=attempt, error=error.str()
                )
                time.sleep(RETRY_PAUSE_S)


def group_id(name: str, topic_prefix: str = "") -> str:
    """The group of reaction ``name``: where its positions are committed, and its ``transactional.id``."""
    return f"{topic_prefix}govbus.{name}"


def _in_time_order(records: list[Message]) -> list[Message]:
    """The batch merged by Kafka timestamp across partitions, each partition's records in their own order."""
    by_partition: dict[Place, list[Message]] = {}
    for message in records:
        by_partition.setdefault((str(message.topic()), int(message.partition() or 0)), []).append(message)
    return list(heapq.merge(*by_partition.values(), key=lambda message: int(message.timestamp()[1])))


def _header(message: Message, name: str) -> str | None:
    """The value of header ``name`` as text, or None when the record lacks it."""
    headers = message.headers() or []
    for key, value in headers.items() if isinstance(headers, dict) else headers:
        if key == name and value is not None:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
